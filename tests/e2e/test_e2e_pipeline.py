"""End to end: train and export a tiny model, serve it with the Procfile's stack on free ports,
predict through the web UI, REST and gRPC, publish a second version under load (no request may
fail, the new version must answer), then stop everything as Ctrl-C does (no process left)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import requests

from e2e_helpers import TRAINER_FLAGS, export
from mnist_common.dataset import load_split
from mnist_common.serving_client import create_client
from mnist_run.ports import free_port, port_is_free
from mnist_run.procfile import ProcfileStack, stack_environment

pytestmark = pytest.mark.slow


def test_plan_reuses_the_version_just_published(pipeline):
    result = subprocess.run(
        [sys.executable, "-m", "mnist_run.cli", "plan", "--data-dir", pipeline.data_dir,
         "--train-dir", pipeline.train_dir, "--model-base-path", pipeline.model_base_path, *TRAINER_FLAGS],
        capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "reuse"), result.stderr
    assert "version 1 was trained on the same data with the same parameters" in result.stderr
    changed = [flag if flag != "3" else "4" for flag in TRAINER_FLAGS]  # another seed
    result = subprocess.run(
        [sys.executable, "-m", "mnist_run.cli", "plan", "--data-dir", pipeline.data_dir,
         "--train-dir", pipeline.train_dir, "--model-base-path", pipeline.model_base_path, *changed],
        capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "train" and "seed 3 -> 4" in result.stderr


class Load:
    """A thread per route predicting continuously, recording every outcome. A short pause keeps
    the load from starving the exporter of the two shared cores."""

    PAUSE_SECONDS = 0.02

    def __init__(self, routes: dict, digits):
        self.routes = routes
        self.digits = digits
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.versions: dict[str, list[int]] = {name: [] for name in routes}
        self.threads = [threading.Thread(target=self._loop, args=(name,), daemon=True) for name in routes]

    def _loop(self, name: str) -> None:
        predict = self.routes[name]
        count = 0
        while not self.stop.is_set():
            image = self.digits[count % len(self.digits)]
            count += 1
            try:
                self.versions[name].append(predict(image))
            except Exception as error:  # any failure at all is what this test looks for
                self.failures.append(f"{name}: {type(error).__name__}: {error}")
            self.stop.wait(self.PAUSE_SECONDS)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_serve_predict_hot_swap_and_stop(pipeline, repo_root, tmp_path):
    env = {
        **stack_environment(grpc_port=free_port(), rest_port=free_port(), ui_port=free_port(),
                            model_base_path=pipeline.model_base_path, data_dir=pipeline.data_dir),
        "WEB_WORKERS": "1",
    }
    ui_url = f"http://127.0.0.1:{env['UI_PORT']}"
    stack = ProcfileStack(os.fspath(repo_root / "Procfile"), env, os.fspath(tmp_path / "stack.log"))
    digits = load_split(pipeline.data_dir, "test", limit=20)
    images = digits.as_float()
    grpc_client = create_client("grpc", "mnist", grpc_address=f"127.0.0.1:{env['GRPC_PORT']}")
    rest_client = create_client("rest", "mnist", rest_url=f"http://127.0.0.1:{env['REST_PORT']}")
    http = requests.Session()

    def via_webui(image) -> int:
        response = http.post(f"{ui_url}/api/v1/predict", json={"pixels": image.tolist()}, timeout=30)
        assert response.status_code == 200, f"HTTP {response.status_code}: {response.text[:300]}"
        body = response.json()
        assert body["prediction"] in range(10) and len(body["probabilities"]) == 10
        return body["model"]["version"]

    def via_rest(image) -> int:
        return rest_client.predict(image[None]).model_version

    def via_grpc(image) -> int:
        return grpc_client.predict(image[None]).model_version

    try:
        stack.start()
        stack.wait_until_ok(ui_url + "/readyz", timeout_seconds=240)

        # One digit three ways: the same model answers the same.
        assert via_webui(images[0]) == via_rest(images[0]) == via_grpc(images[0]) == 1
        rest_answer = rest_client.predict(images[:5])
        grpc_answer = grpc_client.predict(images[:5])
        assert rest_answer.probabilities.shape == grpc_answer.probabilities.shape == (5, 10)
        assert (rest_answer.classes == grpc_answer.classes).all()

        # A second version appears while every route is under load.
        with Load({"webui": via_webui, "rest": via_rest, "grpc": via_grpc}, images) as load:
            time.sleep(2)
            export(pipeline, "--force", "--republish")
            assert sorted(os.listdir(pipeline.model_base_path)) == ["1", "2"]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not all(
                seen and seen[-1] == 2 for seen in load.versions.values()
            ):
                time.sleep(0.5)
            time.sleep(1)  # a little more load on the new version
        assert load.failures == [], load.failures[:5]
        for route, seen in load.versions.items():
            assert seen[0] == 1 and seen[-1] == 2, f"{route} answered versions {sorted(set(seen))}"
        deadline = time.monotonic() + 10  # the announcer polls every 2 s
        while "now serving model version 2" not in stack.log_tail(200) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "now serving model version 2" in stack.log_tail(200)

        # Ctrl-C: honcho, the model server, gunicorn and its workers, the announcer: all gone.
        pids = stack.descendant_pids()
        assert len(pids) >= 4, pids
        returncode = stack.stop(signal.SIGINT)
        assert returncode is not None
        time.sleep(0.5)
        alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        assert alive == [], f"left behind: {alive}\n{stack.log_tail()}"
        for name in ("GRPC_PORT", "REST_PORT", "UI_PORT"):
            assert port_is_free(int(env[name]))[0], f"{name} is still bound"
    finally:
        stack.stop()
        grpc_client.close()
        rest_client.close()
