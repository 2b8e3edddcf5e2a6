"""Start the Procfile's services under honcho as one unit, and stop every one of them.

honcho starts each Procfile entry in its own session and, on SIGINT or SIGTERM, sends SIGTERM
to each entry's process group (SIGKILL after 5 s), so signalling honcho alone stops the whole
stack, gunicorn's workers included. `make run` runs honcho in the foreground; the benchmark and
the tests use ProcfileStack to do the same in the background.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import IO

import requests


class StackError(RuntimeError):
    """The stack did not come up; the message holds the end of its log."""


def venv_environment(overrides: dict[str, str]) -> dict[str, str]:
    """The current environment, the venv's bin first on PATH (the Procfile names bare commands)."""
    env = dict(os.environ)
    # Under `make bench`, MAKEFLAGS carries make's command-line variables (UI_PORT=...), which
    # would beat the environment in the Procfile's own `make serve` / `make ui`: the stack's
    # settings are the environment given here, so start those makes afresh.
    for variable in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(variable, None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def stack_environment(
    *,
    grpc_port: int,
    rest_port: int,
    ui_port: int,
    model_base_path: str,
    data_dir: str,
    model_name: str = "mnist",
    poll_seconds: float = 1.0,
) -> dict[str, str]:
    """The variables the Procfile reads, for a stack on loopback ports (benchmark, tests)."""
    return {
        "GRPC_PORT": str(grpc_port),
        "REST_PORT": str(rest_port),
        "UI_PORT": str(ui_port),
        "MODEL_NAME": model_name,
        "MODEL_BASE_PATH": model_base_path,
        "DATA_DIR": data_dir,
        "POLL_SECONDS": f"{poll_seconds:g}",
        # Loopback only, for a stack nobody else should reach (gunicorn_conf binds 0.0.0.0;
        # gunicorn lets GUNICORN_CMD_ARGS override its config file).
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{ui_port}",
        # The web UI dials loopback explicitly: "localhost" may try ::1 first.
        "SERVING_GRPC_ADDRESS": f"127.0.0.1:{grpc_port}",
        "SERVING_REST_URL": f"http://127.0.0.1:{rest_port}",
    }


class ProcfileStack:
    """honcho running some entries of a Procfile, in the background, logging to a file."""

    def __init__(
        self,
        procfile: str,
        env: dict[str, str],
        log_path: str,
        processes: Iterable[str] = (),
        cwd: str | None = None,
    ):
        self.procfile = os.path.abspath(procfile)
        self.env = venv_environment(env)
        self.log_path = log_path
        self.processes = list(processes)
        self.cwd = cwd or os.path.dirname(self.procfile)
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ProcfileStack:
        self._log = open(self.log_path, "ab")
        command = [sys.executable, "-m", "honcho", "--no-colour", "-f", self.procfile, "-d", self.cwd, "start"]
        self.process = subprocess.Popen(
            command + self.processes,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own process group, as a terminal would give `make run`: a signal meant for the
            # caller (pytest, the benchmark) does not reach it, and it can be signalled alone.
            start_new_session=True,
        )
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as log:
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until_serving(self, ui_url: str, timeout_seconds: float = 120.0) -> None:
        """Wait until the web UI at ui_url reaches a model server with an AVAILABLE version
        (its /readyz is about the UI process alone)."""
        from mnist_run.announce import STATUS_PATH, newest_available_version

        def serves(response) -> bool:
            try:
                return newest_available_version(response.json()) is not None
            except ValueError:
                return False

        self.wait_until_ok(ui_url.rstrip("/") + STATUS_PATH, timeout_seconds, accept=serves)

    def wait_until_ok(self, url: str, timeout_seconds: float = 120.0, accept=lambda response: True) -> None:
        """Wait for `url` to answer 200 (and `accept` the answer); StackError if honcho exits or
        time runs out."""
        deadline = time.monotonic() + timeout_seconds
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise StackError(f"the stack exited before {url} was ready:\n{self.log_tail()}")
            try:
                response = requests.get(url, timeout=2)
                if response.status_code == 200 and accept(response):
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except requests.RequestException as error:
                last = type(error).__name__
            time.sleep(0.25)
        raise StackError(f"{url} was not ready within {timeout_seconds:g} s ({last}):\n{self.log_tail()}")

    def descendant_pids(self) -> set[int]:
        """Every process under honcho right now (services, gunicorn workers, ...)."""
        import psutil

        if self.process is None:
            return set()
        try:
            return {child.pid for child in psutil.Process(self.process.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            return set()

    def stop(self, sig: int = signal.SIGINT, timeout_seconds: float = 30.0) -> int | None:
        """Signal honcho as Ctrl-C would and wait for it; SIGKILL the group if it hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.returncode

    def __enter__(self) -> ProcfileStack:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
