"""An exporter killed (SIGKILL) or stopped (SIGTERM) before publishing leaves no visible version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from mnist_exporter import held_out, saved_model, validation, warmup
from mnist_exporter.cli import main
from mnist_exporter.exporter import PAUSE_ENV
from mnist_exporter.validation import Evaluation, GateReport
from tests.model_exporter.exporter_helpers import export_args


def test_kill_before_publish_leaves_no_version_and_next_run_recovers(trained_dir, data_dir, tmp_path):
    base = tmp_path / "mnist"
    flag = tmp_path / "paused"
    env = {**os.environ, PAUSE_ENV: str(flag), "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_exporter.cli", *export_args(trained_dir, data_dir, base)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while not flag.exists():
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the exporter never reached the publish step"
            time.sleep(0.1)
        staging = flag.read_text()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()

    # staged and validated, yet nothing a TF Serving poll would consider a version
    assert os.path.exists(os.path.join(staging, "saved_model.pb"))
    names = os.listdir(base)
    assert names == [os.path.basename(staging)] and names[0].startswith(".staging-")
    assert not any(name.isdigit() for name in names)

    # the next run publishes version 1 and removes the leftover staging folder
    assert main(export_args(trained_dir, data_dir, base)) == 0
    assert os.listdir(base) == ["1"]


def test_sigterm_before_publish_removes_staging(trained_dir, data_dir, tmp_path, monkeypatch):
    """Kubernetes stops pods with SIGTERM: the exporter exits 143 and cleans up after itself.

    Export and gate are stubbed (a passing gate), so this runs in-process in a moment.
    """

    def fake_export(model, export_dir):
        os.makedirs(os.path.join(export_dir, "variables"))
        open(os.path.join(export_dir, "saved_model.pb"), "wb").close()

    passing = GateReport(evaluation=Evaluation(accuracy=0.9, loss=0.1, count=10, per_class_accuracy={}))
    monkeypatch.setattr(saved_model, "export_saved_model", fake_export)
    monkeypatch.setattr(warmup, "write_warmup_file", lambda folder, logs: "unused")
    monkeypatch.setattr(validation, "run_gate", lambda *a, **k: passing)
    evaluated = {"accuracy": 0.9, "digits": 10, "interval": {"low": 0.6, "high": 0.98}}
    monkeypatch.setattr(held_out, "evaluate_saved_model", lambda *a, **k: evaluated)
    flag = tmp_path / "paused"
    monkeypatch.setenv(PAUSE_ENV, str(flag))

    def terminate_when_paused():
        deadline = time.monotonic() + 120
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=terminate_when_paused, daemon=True)
    killer.start()
    base = tmp_path / "models" / "mnist"
    with pytest.raises(SystemExit) as exit_info:
        main(export_args(trained_dir, data_dir, base))
    killer.join()
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert not (tmp_path / "models").exists()  # staging and the base path it needed are gone
    assert signal.getsignal(signal.SIGTERM) == handler_before
