"""An exporter killed between staging and publishing leaves no visible version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from exporter_helpers import export_args
from mnist_exporter.cli import main
from mnist_exporter.exporter import PAUSE_ENV


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
