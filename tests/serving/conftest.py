"""Fixtures for the TF Serving contract suite.

The suite talks to a server given by SERVING_URL (REST base URL, e.g. http://127.0.0.1:8501) and
SERVING_GRPC (host:port) when they are set, so the same tests run against the real
tensorflow/serving image (`make serve-docker`). Otherwise each session starts the stand-in as a
subprocess on free ports over a model it trains and exports into pytest's tmp_path.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import grpc
import pytest
import requests

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "services" / "tf-serving" / "config"
MODEL_NAME = "mnist"
STARTUP_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerUnderTest:
    """Where a TF Serving (real or stand-in) listens, and how to reach it."""

    def __init__(self, rest_url: str, grpc_target: str, base_path: pathlib.Path | None, standin: bool,
                 process: subprocess.Popen | None = None, log_path: pathlib.Path | None = None):
        self.rest_url = rest_url.rstrip("/")
        self.grpc_target = grpc_target
        self.base_path = base_path  # None when the suite cannot write into the server's base path
        self.standin = standin
        self.process = process
        self.log_path = log_path
        self.channel = grpc.insecure_channel(grpc_target)

    def model_url(self, suffix: str = "", model: str = MODEL_NAME) -> str:
        return f"{self.rest_url}/v1/models/{model}{suffix}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        self.channel.close()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_available(server: ServerUnderTest, version: int | None = None, timeout: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.process and server.process.poll() is not None:
            pytest.fail(f"stand-in exited with {server.process.returncode}:\n{server.log_text()[-3000:]}")
        try:
            response = requests.get(server.model_url(), timeout=2)
            last = response.text
            if response.status_code == 200:
                states = {int(s["version"]): s["state"] for s in response.json()["model_version_status"]}
                if (version is None and "AVAILABLE" in states.values()) or states.get(version) == "AVAILABLE":
                    return
        except requests.RequestException as error:
            last = str(error)
        time.sleep(0.3)
    pytest.fail(f"model not AVAILABLE after {timeout}s; last answer: {last}\n{server.log_text()[-3000:]}")


@pytest.fixture(scope="session")
def exported_version(tmp_path_factory, data_dir) -> pathlib.Path:
    """A real SavedModel: build_model(), one epoch on 1500 training digits, exported once."""
    from mnist_common.dataset import load_split
    from mnist_exporter.saved_model import export_saved_model
    from mnist_trainer.model import build_model

    import keras

    keras.utils.set_random_seed(7)
    train = load_split(data_dir, "train")
    model = build_model()
    model.fit(train.as_float()[:1500], train.labels[:1500], epochs=1, batch_size=32, verbose=0)
    export_dir = tmp_path_factory.mktemp("export") / "1"
    export_saved_model(model, str(export_dir))
    return export_dir


def publish(base_path: pathlib.Path, version: int, source: pathlib.Path) -> None:
    """Publish a version the way the exporter does: stage in a hidden folder, rename into place."""
    staging = base_path / f".staging-{version}"
    shutil.copytree(source, staging)
    os.rename(staging, base_path / str(version))


def start_standin(base_path: pathlib.Path, log_path: pathlib.Path, config_file: pathlib.Path | None = None,
                  extra_flags: tuple[str, ...] = ()) -> ServerUnderTest:
    rest_port, grpc_port = free_port(), free_port()
    model_flags = (
        [f"--model_config_file={config_file}"]
        if config_file
        else [f"--model_name={MODEL_NAME}", f"--model_base_path={base_path}"]
    )
    command = [
        sys.executable, "-m", "tfserving_standin.cli",
        f"--port={grpc_port}", f"--rest_api_port={rest_port}", "--host=127.0.0.1",
        *model_flags,
        "--file_system_poll_wait_seconds=1",
        "--enable_batching", f"--batching_parameters_file={CONFIG_DIR / 'batching_parameters.txt'}",
        f"--monitoring_config_file={CONFIG_DIR / 'monitoring.config'}",
        "--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=1",
        *extra_flags,
    ]
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    log_file.close()
    server = ServerUnderTest(f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", base_path, True,
                             process, log_path)
    wait_available(server)
    return server


@pytest.fixture(scope="session")
def server(tmp_path_factory, exported_version):
    """The server the contract suite checks: SERVING_URL/SERVING_GRPC, or a fresh stand-in."""
    if os.environ.get("SERVING_URL"):
        grpc_target = os.environ.get("SERVING_GRPC")
        if not grpc_target:
            pytest.fail("SERVING_URL is set but SERVING_GRPC (host:port of the gRPC API) is not")
        external = ServerUnderTest(os.environ["SERVING_URL"], grpc_target, None, standin=False)
        wait_available(external, timeout=30)
        yield external
        external.stop()
        return
    root = tmp_path_factory.mktemp("serving")
    base_path = root / "models" / MODEL_NAME
    base_path.mkdir(parents=True)
    publish(base_path, 1, exported_version)
    # A models.config like the cluster's, plus a version label for the /labels/ routes.
    config_file = root / "models.config"
    config_file.write_text(
        "model_config_list {\n  config {\n"
        f'    name: "{MODEL_NAME}"\n    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        '    model_version_policy { latest { num_versions: 1 } }\n'
        '    version_labels { key: "stable" value: 1 }\n'
        "  }\n}\n"
    )
    standin = start_standin(base_path, root / "standin.log", config_file)
    yield standin
    standin.stop()


@pytest.fixture
def standin_only(server):
    """For checks of the stand-in's own limits, which the real TF Serving does not have."""
    if not server.standin:
        pytest.skip("checks a stand-in limit (TF Serving itself has no such check)")
    return server
