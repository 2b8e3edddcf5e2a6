"""Fixtures of the resilience tests: one real tiny pipeline (mnist-train, mnist-export) and one
serving stack (tfserving-standin + the web UI under gunicorn) on free loopback ports, shared by
the whole session. Servers are started and stopped with the web UI tests' own helpers
(tests/web_ui/webui_servers.py), by pid."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import subprocess

import pytest
import requests

from tests.resilience.figures import record
from tests.resilience.resilience_support import exporter_command, pipeline_env, trainer_command
from tests.support.waiting import wait_for
from tests.web_ui import webui_servers


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory) -> pathlib.Path:
    """Where every process these tests start logs to (the secrets scan reads them all)."""
    return tmp_path_factory.mktemp("service-logs")


def run_logged(command: list[str], log_path: pathlib.Path, timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=pipeline_env(), capture_output=True, text=True, timeout=timeout)
    log_path.write_text(result.stdout + result.stderr)
    return result


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    model_dir: pathlib.Path
    validation_accuracy: float
    stdout: str


@pytest.fixture(scope="session")
def training_run(tmp_path_factory, data_dir, logs_dir) -> TrainingRun:
    """An uninterrupted run of the tiny configuration: the reference for the resume test and
    the trainer output every exporter test starts from."""
    import json

    model_dir = tmp_path_factory.mktemp("training") / "model"
    result = run_logged(trainer_command(data_dir, model_dir), logs_dir / "train-reference.log", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((model_dir / "metrics.json").read_text())
    return TrainingRun(model_dir, float(metrics["validation_accuracy"]), result.stdout)


@pytest.fixture(scope="session")
def published_base(tmp_path_factory, training_run, data_dir, logs_dir) -> pathlib.Path:
    """A base path holding version 1, published by the real mnist-export. Read only: copy it."""
    base = tmp_path_factory.mktemp("published") / "mnist"
    result = run_logged(
        exporter_command(training_run.model_dir, data_dir, base), logs_dir / "export-reference.log", timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(os.listdir(base)) == ["1"]
    return base


@dataclasses.dataclass
class ServingStack:
    base_path: pathlib.Path
    standin: object  # webui_servers.StandIn
    web: object  # webui_servers.WebUiServer
    source_version: pathlib.Path  # a complete version folder to publish copies of

    def publish(self, version: int, source: pathlib.Path | None = None) -> None:
        """Publish the way the exporter does: stage in a dot-folder, then one rename."""
        staging = self.base_path / f".staging-{version}"
        shutil.copytree(source or self.source_version, staging)
        os.rename(staging, self.base_path / str(version))

    def versions_on_disk(self) -> list[int]:
        return sorted(int(name) for name in os.listdir(self.base_path) if name.isdigit())

    def web_ready(self) -> bool:
        try:
            # /readyz is the UI's own readiness; /api/v1/model asks the model server through it.
            return requests.get(f"{self.web.url}/api/v1/model", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def ensure_up(self) -> None:
        """Restart the model server if a test left it down, and wait until the web UI is ready."""
        if not self.standin.running:
            self.standin.start()
        wait_for(self.web_ready, 30, "the web UI to be ready")


@pytest.fixture(scope="session")
def serving_stack(tmp_path_factory, published_base, data_dir, logs_dir):
    """tfserving-standin on a private base path (version 1) and gunicorn over gRPC, one worker."""
    base = tmp_path_factory.mktemp("serving") / "mnist"
    shutil.copytree(published_base, base)
    standin = webui_servers.StandIn(os.fspath(base), os.fspath(logs_dir / "standin.log"))
    web = webui_servers.WebUiServer(standin, data_dir, os.fspath(logs_dir / "gunicorn.log"), protocol="grpc", workers=1)
    try:
        standin.start()
        web.start()
        stack = ServingStack(base, standin, web, published_base / "1")
        stack.ensure_up()
        yield stack
    finally:
        web.stop()
        standin.stop()


@pytest.fixture
def stack(serving_stack) -> ServingStack:
    serving_stack.ensure_up()
    return serving_stack


def pytest_runtest_logreport(report):
    """Each test's outcome, for the report (xfails are the known defects, with their reasons)."""
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        record(
            "outcomes",
            report.nodeid,
            outcome=outcome,
            seconds=round(report.duration, 1),
            reason=getattr(report, "wasxfail", "").removeprefix("reason: ") or None,
        )
