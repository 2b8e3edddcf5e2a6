"""Waiting for a process to reach a state: on its answers, bounded, never on a fixed sleep."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


class WaitTimeout(AssertionError):
    """What was waited for did not happen in time (or the process died first)."""


def wait_for(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    interval: float = 0.1,
    process: subprocess.Popen | None = None,
    log_tail: Callable[[], str] = lambda: "",
    ignore: tuple[type[BaseException], ...] = (),
):
    """The first truthy value of condition() within `timeout` seconds.

    Raises WaitTimeout naming `what` (with the log tail) when time runs out or `process` exits
    first. Exceptions in `ignore` (a server not accepting connections yet) count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        if process is not None and process.poll() is not None:
            raise WaitTimeout(f"exited ({process.returncode}) before {what}:\n{log_tail()}")
        try:
            value = condition()
            if value:
                return value
        except ignore as error:
            last_error = f" (last: {error})"
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{last_error}\n{log_tail()}".rstrip())
        time.sleep(interval)
