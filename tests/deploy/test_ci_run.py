""".ci/run's engine handling, with recording stand-ins for dockerd, docker and make: where no
engine answers it starts dockerd, waits until `docker info` answers, and stops it when it exits,
also when the tests fail; an engine that already answers is used and left running."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

from tests.support.paths import REPO_ROOT


def tool(folder, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def ci_run(tmp_path, engine_running: bool, tests_fail: bool) -> tuple[subprocess.CompletedProcess, object]:
    repo, bin_dir, state = tmp_path / "repo", tmp_path / "bin", tmp_path / "state"
    for folder in (repo / ".ci", repo / "services" / "web-ui", bin_dir, state):
        folder.mkdir(parents=True)
    shutil.copy(REPO_ROOT / ".ci" / "run", repo / ".ci" / "run")
    shutil.copy(REPO_ROOT / "services" / "web-ui" / "Dockerfile", repo / "services" / "web-ui" / "Dockerfile")
    if engine_running:
        (state / "engine").touch()
    # dockerd: marks the engine up until it is terminated (then marks it down and says so).
    tool(
        bin_dir,
        "dockerd",
        f"echo started >> {state}/dockerd.log; touch {state}/engine\n"
        f'trap "rm -f {state}/engine; echo stopped >> {state}/dockerd.log; exit 0" TERM\n'
        "while :; do sleep 0.05; done\n",
    )
    tool(
        bin_dir,
        "docker",
        f'case "$1" in info) [ -e {state}/engine ];; version) echo 20.10;; *) exit 0;; esac\n',
    )
    tool(
        bin_dir,
        "make",
        f'echo "$*" >> {state}/make.log\n[ "$1" = test ] && [ -n "{"1" if tests_fail else ""}" ] && exit 1\nexit 0\n',
    )
    for name in ("npm", "debootstrap", "docker-registry", "apt-get", "chromium"):
        tool(bin_dir, name, f'echo "{name} $*" >> {state}/other.log\n')
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "DOCKER": os.fspath(bin_dir / "docker"),
        "HOME": os.fspath(tmp_path),
        "CI": "true",
    }
    result = subprocess.run(
        ["bash", ".ci/run"], cwd=repo, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    return result, state


def test_without_an_engine_dockerd_is_started_and_stopped_after_the_tests(tmp_path):
    result, state = ci_run(tmp_path, engine_running=False, tests_fail=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (state / "dockerd.log").read_text().split() == ["started", "stopped"]
    assert not (state / "engine").exists()
    assert [line.split()[0] for line in (state / "make.log").read_text().splitlines()] == ["setup", "images", "test"]
    assert "ci: start dockerd:" in result.stdout and "ci: make test:" in result.stdout


def test_a_failing_test_run_still_stops_dockerd_and_fails(tmp_path):
    result, state = ci_run(tmp_path, engine_running=False, tests_fail=True)
    assert result.returncode != 0
    assert (state / "dockerd.log").read_text().split() == ["started", "stopped"]
    assert "ci: stopping dockerd" in result.stdout


def test_an_engine_that_answers_is_used_and_left_running(tmp_path):
    result, state = ci_run(tmp_path, engine_running=True, tests_fail=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (state / "dockerd.log").exists() and (state / "engine").exists()
