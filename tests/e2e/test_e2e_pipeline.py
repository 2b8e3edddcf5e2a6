"""End to end: train and export a tiny model, serve it with the Procfile's stack on free ports,
predict through the web UI, REST and gRPC, publish a second version under load (no request may
fail, the new version must answer), then stop everything as Ctrl-C does (no process left)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import requests

from mnist_common.dataset import load_split
from mnist_common.serving_client import create_client
from mnist_run.ports import free_port, port_is_free
from tests.e2e.e2e_helpers import TRAINER_FLAGS, TRAINER_VARIABLES, export, wait_for_line

pytestmark = pytest.mark.slow


def plan(pipeline, trainer_flags) -> subprocess.CompletedProcess:
    """`mnist-run plan` over the pipeline's dirs with these trainer flags."""
    command = [
        sys.executable,
        "-m",
        "mnist_run.cli",
        "plan",
        "--data-dir",
        pipeline.data_dir,
        "--train-dir",
        pipeline.train_dir,
        "--model-base-path",
        pipeline.model_base_path,
        *trainer_flags,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_plan_reuses_the_version_just_published(pipeline):
    result = plan(pipeline, TRAINER_FLAGS)
    assert (result.returncode, result.stdout.strip()) == (0, "reuse"), result.stderr
    assert "version 1 was trained on the same data with the same parameters" in result.stderr
    result = plan(pipeline, TRAINER_FLAGS + ["--seed", "4"])  # another seed (the last flag wins)
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


def make_run(repo_root, pipeline, data_copy: str, ports: dict, log_path) -> subprocess.Popen:
    """`make run` in its own process group, as a terminal would run it (Ctrl-C signals the group)."""
    command = [
        "make",
        "-s",
        "run",
        f"ARTIFACTS={os.path.dirname(data_copy)}",
        f"DATA_DIR={data_copy}",
        f"TRAIN_DIR={pipeline.train_dir}",
        f"MODEL_BASE_PATH={pipeline.model_base_path}",
        *(f"{name}={value}" for name, value in {**ports, **TRAINER_VARIABLES}.items()),
        "POLL_SECONDS=1",
        "WEB_WORKERS=1",
        "VERSION_POLICY=latest",  # this test covers the latest policy
    ]
    log = open(log_path, "wb")
    return subprocess.Popen(
        command, cwd=repo_root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def test_make_run_reuses_serves_hot_swaps_and_stops_on_ctrl_c(pipeline, repo_root, tmp_path):
    # make run prepares data (a copy: tests never write artifacts/), reuses the published tiny
    # model (same data, same trainer flags), and runs the Procfile in the foreground.
    data_copy = os.fspath(tmp_path / "artifacts" / "data")
    shutil.copytree(pipeline.data_dir, data_copy)
    ports = {"GRPC_PORT": free_port(), "REST_PORT": free_port(), "UI_PORT": free_port()}
    ui_url = f"http://127.0.0.1:{ports['UI_PORT']}"
    log_path = tmp_path / "make-run.log"
    digits = load_split(pipeline.data_dir, "test", limit=20)
    images = digits.as_float()
    grpc_client = create_client("grpc", "mnist", grpc_address=f"127.0.0.1:{ports['GRPC_PORT']}")
    rest_client = create_client("rest", "mnist", rest_url=f"http://127.0.0.1:{ports['REST_PORT']}")
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

    run = make_run(repo_root, pipeline, data_copy, ports, log_path)
    try:
        output = wait_for_line(log_path, f"ready: open http://localhost:{ports['UI_PORT']}/", run, timeout=240)
        assert "model: reuse: version 1 was trained on the same data" in output
        assert "epoch 1/1" not in output and "mnist-export" not in output  # nothing trained or exported
        # Logs are prefixed by service.
        assert re.search(r"^\S+ serving\.1 +\| ", output, re.M) and re.search(r"^\S+ webui\.1 +\| ", output, re.M)

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
            while time.monotonic() < deadline and not all(seen and seen[-1] == 2 for seen in load.versions.values()):
                time.sleep(0.5)
            time.sleep(1)  # a little more load on the new version
        assert load.failures == [], load.failures[:5]
        for route, seen in load.versions.items():
            assert seen[0] == 1 and seen[-1] == 2, f"{route} answered versions {sorted(set(seen))}"
        wait_for_line(log_path, "now serving: model version 2, the newest (no rollout)", run, timeout=15)

        # Ctrl-C: make, honcho, the model server, gunicorn and its workers, the announcer: all gone.
        pids = {child.pid for child in psutil.Process(run.pid).children(recursive=True)}
        assert len(pids) >= 6, pids
        os.killpg(run.pid, signal.SIGINT)
        run.wait(60)
        time.sleep(0.5)
        alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        assert alive == [], f"left behind: {alive}\n{log_path.read_text()[-3000:]}"
        for name, port in ports.items():
            assert port_is_free(port)[0], f"{name} {port} is still bound"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(30)
        grpc_client.close()
        rest_client.close()
