"""The whole tree is clean under ruff's lint and format check (ruff.toml), as `make lint` checks."""

from __future__ import annotations

import os
import subprocess

from tests.support.paths import REPO_ROOT, VENV_BIN

RUFF = os.path.join(VENV_BIN, "ruff")


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RUFF, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_ruff_finds_nothing_to_lint():
    result = ruff("check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tree_is_in_ruffs_format():
    result = ruff("format", "--check", "--no-cache", ".")
    assert result.returncode == 0, f"run 'make format':\n{result.stdout}{result.stderr}"


def test_ruff_would_catch_an_unused_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n")
    result = subprocess.run(
        [RUFF, "check", "--no-cache", "--config", os.fspath(REPO_ROOT / "ruff.toml"), os.fspath(sample)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "F401" in result.stdout
