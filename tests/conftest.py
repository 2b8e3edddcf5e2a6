"""Fixtures every test area may use."""

from __future__ import annotations

import os
import pathlib

import pytest

from tests.support.paths import DATA_DIR, REPO_ROOT


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def data_dir() -> str:
    """The prepared real MNIST digits (`make test` runs `make data` first)."""
    if not (DATA_DIR / "manifest.json").exists():
        pytest.fail(f"{DATA_DIR} is not prepared: run 'make data' (make test does it for you)")
    return os.fspath(DATA_DIR)
