"""make canary / promote / rollback against a running stand-in and web UI under load: no request
fails, and each change is visible in the web UI's answers within two config polls."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests

from tests.tf_serving.serving_harness import MODEL_NAME, free_port, publish, start_standin

pytestmark = pytest.mark.slow

POLL_S = 0.5  # the stand-in's config poll and the web UI's state poll
VISIBLE_S = 2 * POLL_S + 1.0  # two polls, plus a request in flight on a busy 2-core machine
VENV_BIN = pathlib.Path(sys.executable).parent
PIXELS = np.full((28, 28), 0.3).tolist()


class Load:
    """Threads posting predicts to the web UI until stopped; every answer kept with its time."""

    def __init__(self, url: str, threads: int = 3):
        self.url = url
        self.answers: list[tuple[float, int, str, int | None]] = []  # (time, status, label, version)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        session = requests.Session()
        deadline = time.monotonic() + 240
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                response = session.post(f"{self.url}/api/v1/predict", json={"pixels": PIXELS}, timeout=10)
                model = response.json().get("model", {}) if response.status_code == 200 else {}
                self.answers.append((time.monotonic(), response.status_code, model.get("label"), model.get("version")))
            except requests.RequestException as error:
                self.answers.append((time.monotonic(), 0, str(error), None))

    def since(self, moment: float):
        return [a for a in self.answers if a[0] >= moment]

    def wait_for(self, check, what: str, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if check():
                return time.monotonic() - started
            time.sleep(0.05)
        pytest.fail(f"{what} not seen within {timeout} s; last answers {self.answers[-5:]}")


@pytest.fixture(params=["grpc", "rest"])
def stack(request, tmp_path, exported_version, data_dir):
    base = tmp_path / "models" / MODEL_NAME
    base.mkdir(parents=True)
    publish(base, 1, exported_version)
    state_file, config_file = tmp_path / "rollout.json", tmp_path / "models.config"
    # The guard's margins have their own tests; here the p95 of a few dozen answers on a shared
    # 2-core machine varies by hundreds of ms, and what is checked is that no request fails.
    lenient_policy = tmp_path / "rollout.yaml"
    lenient_policy.write_text("promote:\n  max_p95_increase_ms: 5000\n")

    def rollout(*args) -> subprocess.CompletedProcess:
        command = [
            sys.executable,
            "-m",
            "mnist_rollout",
            *args,
            "--state-file",
            str(state_file),
            "--model-config-file",
            str(config_file),
            "--model-base-path",
            str(base),
            "--rest-url",
            stack.rest_url,
            "--metrics-url",
            f"{stack.ui_url}/metrics",
            "--policy-file",
            str(lenient_policy),
            "--quiet-seconds",
            "1",
            "--timeout",
            "60",
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=180)

    class Stack:
        rest_url = ""
        ui_url = ""

    stack = Stack()
    stack.rollout = rollout
    assert rollout("init").returncode == 0  # v1, the only version, becomes stable
    publish(base, 2, exported_version)  # then a retrained one is published
    standin = start_standin(
        base, tmp_path / "standin.log", config_file, extra_flags=(f"--model_config_file_poll_wait_seconds={POLL_S}",)
    )
    stack.rest_url = standin.rest_url
    port = free_port()
    env = dict(
        os.environ,
        UI_PORT=str(port),
        SERVING_GRPC_ADDRESS=standin.grpc_target,
        SERVING_REST_URL=standin.rest_url,
        SERVING_PROTOCOL=request.param,
        DATA_DIR=data_dir,
        WEB_WORKERS="1",
        WEB_THREADS="4",
        ROLLOUT_FILE=str(state_file),
        ROLLOUT_POLL_SECONDS=str(POLL_S),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp_path / "webui.log", "wb")  # noqa: SIM115 - closed with the process
    web = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", "python:mnist_webui.gunicorn_conf", "mnist_webui:create_app()"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    stack.ui_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{stack.ui_url}/readyz", timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        pytest.fail("the web UI did not become ready")
    yield stack
    web.terminate()
    web.wait(timeout=30)
    log.close()
    standin.stop()


def test_canary_promote_rollback_under_load(stack):
    load = Load(stack.ui_url)
    for thread in load.threads:
        thread.start()
    try:
        load.wait_for(lambda: len(load.answers) > 20, "the first answers", 30)

        result = stack.rollout("canary", "--model-version", "2", "--percent", "30")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "canary v2 at 30 %" in result.stdout
        done = time.monotonic()
        load.wait_for(
            lambda: any(a[2] == "canary" and a[3] == 2 for a in load.since(done)), "canary v2 answers", VISIBLE_S
        )
        load.wait_for(lambda: sum(a[2] == "canary" for a in load.answers) >= 25, "enough canary answers", 60)
        status = stack.rollout("status")
        assert "canary v2 at 30 %" in status.stdout and "v2  canary" in status.stdout

        result = stack.rollout("promote")  # the guard lets a healthy canary through
        assert result.returncode == 0, result.stdout + result.stderr
        done = time.monotonic()
        load.wait_for(
            lambda: (
                load.since(done + POLL_S) and all(a[2] == "stable" and a[3] == 2 for a in load.since(done + POLL_S))
            ),
            "only stable v2 answers",
            VISIBLE_S + POLL_S,
        )
        states = requests.get(f"{stack.rest_url}/v1/models/{MODEL_NAME}", timeout=5).json()["model_version_status"]
        assert {int(s["version"]): s["state"] for s in states}.get(1) == "END"  # the old stable was unloaded

        result = stack.rollout("rollback")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "stable v1 at 100 %" in result.stdout
        done = time.monotonic()
        load.wait_for(lambda: any(a[3] == 1 for a in load.since(done)), "stable v1 answers again", VISIBLE_S)
    finally:
        load.stop.set()
        for thread in load.threads:
            thread.join(timeout=15)
    failed = [a for a in load.answers if a[1] != 200]
    assert len(load.answers) > 100
    assert failed == [], failed[:5]
