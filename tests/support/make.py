"""Running make in the repository from a test, with the venv the tests run in (not .venv)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from tests.support.paths import REPO_ROOT

VENV = os.fspath(pathlib.Path(sys.executable).parent.parent)


def make(
    *args: str,
    env: dict | None = None,
    unset: tuple[str, ...] = (),
    timeout: float = 120,
    cwd: os.PathLike | str = REPO_ROOT,
) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    for name in unset:
        environment.pop(name, None)
    return subprocess.run(
        ["make", "--no-print-directory", f"VENV={VENV}", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
