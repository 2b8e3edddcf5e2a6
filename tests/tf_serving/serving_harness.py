"""The serving tests' harness: where a TF Serving under test listens, starting the stand-in,
publishing versions. Shared by conftest.py and the test modules."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time

import grpc
import pytest
import requests

from mnist_run.ports import free_port
from tests.support.standin import MODEL_NAME, standin_command

STARTUP_TIMEOUT_S = 120


class ServerUnderTest:
    """Where a TF Serving (real or stand-in) listens, and how to reach it."""

    def __init__(
        self,
        rest_url: str,
        grpc_target: str,
        base_path: pathlib.Path | None,
        standin: bool,
        process: subprocess.Popen | None = None,
        log_path: pathlib.Path | None = None,
    ):
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


def publish(base_path: pathlib.Path, version: int, source: pathlib.Path) -> None:
    """Publish a version the way the exporter does: stage in a hidden folder, rename into place."""
    staging = base_path / f".staging-{version}"
    shutil.copytree(source, staging)
    os.rename(staging, base_path / str(version))


def start_standin(
    base_path: pathlib.Path,
    log_path: pathlib.Path,
    config_file: pathlib.Path | None = None,
    extra_flags: tuple[str, ...] = (),
) -> ServerUnderTest:
    rest_port, grpc_port = free_port(), free_port()
    command = standin_command(
        grpc_port=grpc_port, rest_port=rest_port, base_path=base_path, config_file=config_file, extra_flags=extra_flags
    )
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    log_file.close()
    server = ServerUnderTest(
        f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", base_path, True, process, log_path
    )
    wait_available(server)
    return server
