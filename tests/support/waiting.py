"""Waiting for a process to reach a state: on its answers, bounded, never on a fixed sleep."""

from __future__ import annotations

import subprocess
import time
from typing import Callable


class WaitTimeout(AssertionError):
    pass


def wait_until(
    check: Callable[[], object],
    timeout: float,
    what: str,
    process: subprocess.Popen | None = None,
    log_tail: Callable[[], str] = lambda: "",
    interval: float = 0.2,
    ignore: tuple[type[BaseException], ...] = (OSError,),
):
    """Poll `check` until it returns something truthy (returned), `process` exits, or `timeout`
    seconds pass (WaitTimeout naming `what`, with the log tail). Exceptions in `ignore` (a server
    not accepting connections yet) count as "not yet"."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        if process is not None and process.poll() is not None:
            raise WaitTimeout(f"exited ({process.returncode}) before {what}:\n{log_tail()}")
        try:
            result = check()
            if result:
                return result
        except ignore as error:
            last_error = f" (last: {error})"
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{what} not reached within {timeout:g} s{last_error}:\n{log_tail()}")
        time.sleep(interval)
