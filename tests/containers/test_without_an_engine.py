"""Without a Docker engine the container tests are skipped, saying why; under CI=true that is an
error instead, since CI must run them (.ci/run starts dockerd)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.paths import REPO_ROOT


def run_without_engine(ci: bool) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["DOCKER"] = "/nonexistent/docker"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/containers/test_images.py", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_an_engine_the_container_tests_are_skipped_with_the_reason():
    result = run_without_engine(ci=False)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (
        "SKIPPED" in result.stdout and "container tests skipped: no docker CLI '/nonexistent/docker'" in result.stdout
    )
    assert " passed" not in result.stdout.splitlines()[-1]


def test_under_ci_a_missing_engine_is_an_error():
    result = run_without_engine(ci=True)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "CI=true: the container tests must run, but no docker CLI" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]
