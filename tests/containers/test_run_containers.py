"""make run-containers: the local stack from the built images, answering a held-out digit through
the web UI container, and Ctrl-C removing what it started.

SERVING_IMAGE is the TF Serving stand-in image here (tests/containers/tf-serving-standin.Dockerfile):
the real tensorflow/serving image cannot be pulled on this machine; the target passes it the same
TF Serving flags either way."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests

from mnist_common.dataset import load_split
from mnist_run.ports import free_ports
from tests.containers.conftest import docker
from tests.support.make import VENV
from tests.support.models import export_version, fit_tiny_model
from tests.support.paths import REPO_ROOT
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]
NAMES = ("mnist-containers-web-ui", "mnist-containers-tf-serving")


def test_run_containers_serves_the_published_version_and_ctrl_c_stops_it(
    engine, built_images, standin_image, data_dir, tmp_path
):
    models = tmp_path / "models" / "mnist"
    export_version(fit_tiny_model(data_dir, digits=2048, epochs=2, seed=1), models, version=1)
    os.chmod(tmp_path, 0o755)
    for folder, _, files in os.walk(tmp_path):  # the containers' user reads what this test wrote
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    ui_port, grpc_port, rest_port = free_ports(3)
    log = open(tmp_path / "run-containers.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            f"VENV={VENV}",
            "run-containers",
            f"DOCKER={engine}",
            f"SERVING_IMAGE={standin_image}",
            f"ARTIFACTS={tmp_path}",
            f"DATA_DIR={data_dir}",
            f"MODEL_BASE_PATH={models}",
            f"UI_PORT={ui_port}",
            f"GRPC_PORT={grpc_port}",
            f"REST_PORT={rest_port}",
        ],
        cwd=REPO_ROOT,
        env={key: value for key, value in os.environ.items() if key not in ("IMAGE_TAG", "REGISTRY")},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{ui_port}"
    try:
        wait_for(
            lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200,
            timeout=240,
            what="make run-containers' web UI",
            interval=0.5,
            process=process,
            log_tail=lambda: (tmp_path / "run-containers.log").read_text()[-3000:],
            ignore=(requests.ConnectionError, requests.Timeout),
        )
        # /readyz says the web UI is up, not that the model server has loaded the version.
        wait_for(
            lambda: "AVAILABLE" in requests.get(f"http://127.0.0.1:{rest_port}/v1/models/mnist", timeout=10).text,
            timeout=240,
            what="the model server's version loaded",
            interval=0.5,
            process=process,
            log_tail=lambda: (tmp_path / "run-containers.log").read_text()[-3000:],
            ignore=(requests.ConnectionError, requests.Timeout),
        )
        digits = load_split(data_dir, "test", limit=1)
        response = requests.post(f"{url}/api/v1/predict", json={"pixels": digits.as_float()[0].tolist()}, timeout=30)
        assert response.status_code == 200, response.text[:300]
        assert response.json()["model"]["version"] == 1
        assert response.json()["prediction"] in range(10)
        # The model server answers on the host's REST port too, as make serve-docker's does.
        status = requests.get(f"http://127.0.0.1:{rest_port}/v1/models/mnist", timeout=10).json()
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        finally:
            log.close()
            leftover = docker("ps", "-aq", *(f"--filter=name=^{name}$" for name in NAMES), check=False).stdout.split()
            if leftover:
                docker("rm", "-f", *leftover, check=False)
    assert not leftover, f"Ctrl-C left containers running:\n{(tmp_path / 'run-containers.log').read_text()[-2000:]}"
    network = docker("network", "ls", "-q", "--filter", "name=^mnist-containers$", check=False).stdout.split()
    if network:
        docker("network", "rm", *network, check=False)
    assert not network, "Ctrl-C left the network mnist-containers"
