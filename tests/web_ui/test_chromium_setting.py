"""The browser tests find Chromium through CHROMIUM, /usr/bin/chromium or PATH, and only refuse
to run when browser tests are actually selected."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tests.support.chromium import ChromiumMissing, find_chromium
from tests.support.make import make
from tests.support.paths import REPO_ROOT


def _executable(path):
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return os.fspath(path)


def test_the_chromium_setting_wins(tmp_path):
    mine = _executable(tmp_path / "my-chromium")
    assert find_chromium({"CHROMIUM": mine, "PATH": ""}) == mine


def test_a_wrong_chromium_setting_is_named(tmp_path):
    with pytest.raises(ChromiumMissing, match=f"CHROMIUM={tmp_path}/nothing"):
        find_chromium({"CHROMIUM": f"{tmp_path}/nothing", "PATH": ""})


@pytest.mark.parametrize("name", ["chromium", "chromium-browser"])
def test_chromium_is_looked_up_on_path(tmp_path, name):
    found = _executable(tmp_path / name)
    assert find_chromium({"PATH": os.fspath(tmp_path)}, default=f"{tmp_path}/absent") == found


def test_missing_everywhere_says_where_it_looked_and_how_to_skip(tmp_path):
    with pytest.raises(ChromiumMissing) as missing:
        find_chromium({"PATH": os.fspath(tmp_path)}, default=f"{tmp_path}/absent")
    assert "chromium-browser" in str(missing.value) and "not browser" in str(missing.value)


def _collect(*args):
    env = {**os.environ, "CHROMIUM": "/nonexistent/chromium"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            "tests/web_ui/test_webui_browser.py",
            *args,
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_selected_browser_tests_without_chromium_refuse_naming_the_setting():
    result = _collect()
    assert result.returncode == 2
    assert "CHROMIUM=/nonexistent/chromium" in result.stdout + result.stderr


def test_deselected_browser_tests_need_no_chromium():
    result = _collect("-m", "not browser")
    assert result.returncode in (0, 5)  # 5: nothing left to run, which is what was asked
    assert "CHROMIUM=" not in result.stdout + result.stderr


def test_make_test_leaves_the_chromium_check_to_the_tests():
    result = make("-n", "test", "PYTEST_ARGS=-m 'not browser'")
    assert result.returncode == 0, result.stderr
    assert "chromium" not in result.stdout
    assert "-m 'not browser'" in result.stdout
