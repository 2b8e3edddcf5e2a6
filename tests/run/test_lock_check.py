"""`make setup`'s last word on the installers: the venv holds exactly what the lock pins.

uv installs the lock by default (INSTALLER=uv) and pip on request (INSTALLER=pip); the
check after either (mnist_run.lock_check) is what makes uv a drop-in rather than a second
resolver: a version the lock does not pin, or a distribution it does not list, fails the set-up.
"""

from __future__ import annotations

import json
import subprocess
import sys

from mnist_run.lock_check import differences, main, normalized, read_pins
from tests.support.paths import REPO_ROOT


class FakeDistribution:
    def __init__(self, name, version, editable=False):
        self.metadata = {"Name": name}
        self.version = version
        self._direct_url = json.dumps({"url": "file:///x", "dir_info": {"editable": True}}) if editable else None

    def read_text(self, name):
        return self._direct_url if name == "direct_url.json" else None


def test_names_are_compared_normalized_and_versions_exactly(tmp_path):
    lock = tmp_path / "constraints.txt"
    lock.write_text("# header\nTyping_Extensions==4.15.0\nnumpy==2.4.6\nsetuptools==80.9.0  # trailing note\n")
    pins = read_pins(str(lock))
    assert pins == {"typing-extensions": "4.15.0", "numpy": "2.4.6", "setuptools": "80.9.0"}
    assert normalized("zope.interface") == normalized("Zope_Interface") == "zope-interface"
    installed = [
        FakeDistribution("typing_extensions", "4.15.0"),
        FakeDistribution("numpy", "2.4.5"),
        FakeDistribution("requests", "2.0.0"),
        FakeDistribution("pip", "26.3"),  # the installer's own: not pinned, as make lock leaves it out
        FakeDistribution("wheel", "0.45.0"),
        FakeDistribution("mnist-common", "0.1.0", editable=True),  # this repository's own packages
    ]
    assert differences(pins, installed) == [
        "numpy 2.4.5 is installed, the lock pins 2.4.6",
        "requests 2.0.0 is installed but not in the lock",
    ]


def test_the_repository_venv_matches_the_lock():
    # The venv the tests run in came from `make setup`; whatever installed it, it holds the lock.
    assert main([str(REPO_ROOT / "requirements" / "constraints.txt")]) == 0


def test_an_unreadable_lock_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "missing.txt")]) == 2
    error = capsys.readouterr().err
    assert "cannot read the lock" in error and "missing.txt" in error


def test_the_lock_pins_the_installer_make_setup_uses():
    assert "uv" in read_pins(str(REPO_ROOT / "requirements" / "constraints.txt"))


def test_an_unknown_installer_is_refused_before_anything_is_installed(tmp_path):
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "--no-print-directory", f"VENV={venv}", f"PYTHON={sys.executable}", "INSTALLER=conda", "setup"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "INSTALLER=conda must be uv or pip" in result.stderr
    assert not venv.exists()
