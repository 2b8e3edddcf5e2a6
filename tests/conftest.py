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


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected what they deselect
def pytest_collection_modifyitems(config, items):
    """Refuse up front, naming the setting, when browser tests are selected and no Chromium is
    found; with them deselected (-m "not browser") everything else runs without it."""
    selected_browser_tests = [item for item in items if item.get_closest_marker("browser")]
    if not selected_browser_tests:
        return
    from tests.support.chromium import ChromiumMissing, find_chromium

    try:
        find_chromium()
    except ChromiumMissing as missing:
        pytest.exit(f"{len(selected_browser_tests)} browser tests are selected, but {missing}", returncode=2)
