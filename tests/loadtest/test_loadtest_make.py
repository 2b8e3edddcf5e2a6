"""`make loadtest`: a short headless locust run meets the objectives, and the same run misses
them once the model server is stopped (the exit code CI gates on, the message naming what failed)."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from mnist_run.ports import free_port
from mnist_run.procfile import ProcfileStack, stack_environment

pytestmark = pytest.mark.slow

LOCUST_SECONDS = 10
SERVED_ENDPOINTS = ("POST /api/v1/predict", "POST /v1/models/mnist:predict", "grpc PredictionService/Predict")


def make_loadtest(repo_root, artifacts, env: dict, data_dir: str):
    command = [
        "make",
        "-s",
        "loadtest",
        f"ARTIFACTS={artifacts}",
        f"DATA_DIR={data_dir}",
        f"GRPC_PORT={env['GRPC_PORT']}",
        f"REST_PORT={env['REST_PORT']}",
        f"UI_PORT={env['UI_PORT']}",
        "USERS=6",
        "SPAWN_RATE=6",
        f"DURATION={LOCUST_SECONDS}s",
    ]
    # Hard limit: the run, locust's start-up (the gRPC protos import TensorFlow) and make.
    return subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=LOCUST_SECONDS + 80)


def warm_up(ui_url: str, data_dir: str, count: int = 8) -> None:
    """A few predictions first, so the web UI's one-off start-up costs are not measured."""
    from mnist_common.dataset import load_split

    for image in load_split(data_dir, "test", limit=count).as_float():
        requests.post(f"{ui_url}/api/v1/predict", json={"pixels": image.tolist()}, timeout=30).raise_for_status()


def test_short_run_passes_then_fails_with_the_model_server_stopped(repo_root, untrained_model_base, data_dir, tmp_path):
    env = {
        **stack_environment(
            grpc_port=free_port(),
            rest_port=free_port(),
            ui_port=free_port(),
            model_base_path=untrained_model_base,
            data_dir=data_dir,
        ),
        "WEB_WORKERS": "1",  # two cores shared with locust and the model server
    }
    procfile = os.fspath(repo_root / "Procfile")
    ui_url = f"http://127.0.0.1:{env['UI_PORT']}"
    # Two honcho runs, so the model server can be stopped while the web UI keeps running.
    serving = ProcfileStack(procfile, env, os.fspath(tmp_path / "serving.log"), ["serving"])
    webui = ProcfileStack(procfile, env, os.fspath(tmp_path / "webui.log"), ["webui"])
    with serving, webui:
        webui.wait_until_serving(ui_url, timeout_seconds=180)
        warm_up(ui_url, data_dir)

        passing = make_loadtest(repo_root, tmp_path / "up", env, data_dir)
        assert passing.returncode == 0, passing.stdout + passing.stderr
        for endpoint in ("GET /", "GET /api/v1/sample", *SERVED_ENDPOINTS):
            assert f"ok    {endpoint}: " in passing.stdout, passing.stdout
        assert "objectives met" in passing.stdout
        runs = os.listdir(tmp_path / "up" / "loadtest")
        assert len(runs) == 1
        assert {"report.html", "locust_stats.csv"} <= set(os.listdir(tmp_path / "up" / "loadtest" / runs[0]))
        # The report names each target (not "None") and carries the verdict on its first screen.
        page = (tmp_path / "up" / "loadtest" / runs[0] / "report.html").read_text()
        assert f"WebUIUser http://127.0.0.1:{env['UI_PORT']}" in page
        assert '"host": "None"' not in page and "objectives met" in page

        serving.stop()
        failing = make_loadtest(repo_root, tmp_path / "down", env, data_dir)
    assert failing.returncode != 0, failing.stdout
    assert "objectives MISSED" in failing.stdout
    (failed_run,) = os.listdir(tmp_path / "down" / "loadtest")
    assert "objectives MISSED" in (tmp_path / "down" / "loadtest" / failed_run / "report.html").read_text()
    for endpoint in SERVED_ENDPOINTS:
        assert f"FAIL  {endpoint}: error rate 100.00%" in failing.stdout, failing.stdout
    assert "ok    GET /api/v1/sample" in failing.stdout  # the web UI itself still answers
