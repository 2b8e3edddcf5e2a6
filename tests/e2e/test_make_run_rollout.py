"""make canary, make promote, make rollback and make canary again, each against a running
`make run` (the rollout policy, the announcer polling), with predicts flowing through the web UI
all along: every make target succeeds and no predict fails.

This is the sequence that used to fail: after a promote, the rollback's drain waited for v2's
request counter to rest, but the announcer asked for the newest version's metadata every 2 s, so
the counter never rested. Drains now count predicts only, and the announcer asks for status."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading

import pytest
import requests

from mnist_run.ports import free_port
from tests.e2e.e2e_helpers import TRAINER_VARIABLES, wait_for_line

pytestmark = pytest.mark.slow

PIXELS = [[0.0] * 28 for _ in range(10)] + [[0.0] * 12 + [1.0] * 4 + [0.0] * 12 for _ in range(10)] + [[0.0] * 28] * 8


class Predicts:
    """Two threads predicting through the web UI until stopped; every answer kept."""

    def __init__(self, ui_url: str):
        self.url = f"{ui_url}/api/v1/predict"
        self.answers: list[tuple[int, str | None, int | None]] = []  # (status, label, version)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self):
        session = requests.Session()
        while not self.stop.is_set():
            try:
                response = session.post(self.url, json={"pixels": PIXELS}, timeout=30)
                model = response.json().get("model", {}) if response.status_code == 200 else {}
                self.answers.append((response.status_code, model.get("label"), model.get("version")))
            except requests.RequestException as error:
                self.answers.append((0, str(error), None))
            self.stop.wait(0.02)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_canary_promote_rollback_canary_under_make_run(pipeline, repo_root, tmp_path):
    artifacts = tmp_path / "artifacts"
    base = tmp_path / "models" / "mnist"
    base.mkdir(parents=True)
    shutil.copytree(os.path.join(pipeline.model_base_path, "1"), base / "1")
    data_copy = artifacts / "data"
    shutil.copytree(pipeline.data_dir, data_copy)
    ports = {"GRPC_PORT": free_port(), "REST_PORT": free_port(), "UI_PORT": free_port()}
    variables = [
        f"ARTIFACTS={artifacts}",
        f"DATA_DIR={data_copy}",
        f"TRAIN_DIR={pipeline.train_dir}",
        f"MODEL_BASE_PATH={base}",
        *(f"{name}={value}" for name, value in {**ports, **TRAINER_VARIABLES}.items()),
        "POLL_SECONDS=1",
        "WEB_WORKERS=1",
    ]
    log_path = tmp_path / "make-run.log"
    with open(log_path, "wb") as log:
        run = subprocess.Popen(
            ["make", "-s", "run", *variables],
            cwd=repo_root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def make(*args) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["make", "-s", *args, *variables], cwd=repo_root, capture_output=True, text=True, timeout=240
        )
        assert result.returncode == 0, f"make {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    try:
        ui = f"http://127.0.0.1:{ports['UI_PORT']}"
        wait_for_line(log_path, "(stable v1 at 100 %, no canary;", run, timeout=300)
        staging = base / ".staging-2"  # a retrained version, published as the exporter does
        shutil.copytree(base / "1", staging)
        os.rename(staging, base / "2")
        with Predicts(ui) as load:
            canary = make("canary", "PERCENT=50")
            assert "canary v2 at 50 %" in canary.stdout
            wait_for_line(log_path, "now serving: stable v1 at 50 %, canary v2 at 50 %", run, timeout=30)
            while sum(1 for status, label, _ in load.answers if status == 200 and label == "canary") < 30:
                assert run.poll() is None and len(load.answers) < 20000
                load.stop.wait(0.2)

            # The guard's margins have their own tests; on a shared 2-core machine the p95 of a few
            # dozen answers varies by hundreds of ms, and what is checked here is the sequence.
            lenient = tmp_path / "rollout.yaml"
            lenient.write_text("promote:\n  max_p95_increase_ms: 5000\n")
            promote = make("promote", f"ROLLOUT_POLICY={lenient}")
            assert "stable v2 at 100 %" in promote.stdout
            assert "lets the canary through" in promote.stdout and "error rate: canary" in promote.stdout
            assert "drained: no predict reaches v1" in promote.stdout

            rollback = make("rollback")  # drains v2 while the announcer keeps polling
            assert "stable v1 at 100 %" in rollback.stdout and "drained: no predict reaches v2" in rollback.stdout

            again = make("canary")
            assert "canary v2 at 10 %" in again.stdout  # the default share
            wait_for_line(log_path, "now serving: stable v1 at 90 %, canary v2 at 10 %", run, timeout=30)
        assert run.poll() is None, "make run exited"
        failed = [answer for answer in load.answers if answer[0] != 200]
        assert len(load.answers) > 100 and failed == [], failed[:5]
        assert {version for status, _, version in load.answers if status == 200} == {1, 2}
    finally:
        os.killpg(run.pid, signal.SIGINT)
        try:
            run.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
