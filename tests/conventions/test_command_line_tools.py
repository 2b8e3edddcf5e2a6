"""Every console script answers --version with its package's version, and the small promises of
the tools' help and output hold."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest

from tests.support.paths import REPO_ROOT

PYPROJECTS = sorted(REPO_ROOT.glob("*/pyproject.toml")) + sorted(REPO_ROOT.glob("*/*/pyproject.toml"))
BIN = pathlib.Path(sys.executable).parent


def _console_scripts() -> list[tuple[str, str]]:
    scripts = []
    for path in PYPROJECTS:
        project = tomllib.loads(path.read_text())["project"]
        scripts += [(name, project["name"]) for name in project.get("scripts", {})]
    return scripts


def test_the_console_scripts_are_found():
    names = {name for name, _ in _console_scripts()}
    assert {
        "mnist-data",
        "mnist-train",
        "mnist-export",
        "tfserving-standin",
        "mnist-run",
        "mnist-deploy",
        "mnist-gke",
        "mnist-bench",
        "mnist-loadtest",
    } <= names


@pytest.mark.parametrize("script, distribution", _console_scripts())
def test_every_console_script_prints_its_package_version(script, distribution):
    done = subprocess.run([str(BIN / script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [script, metadata.version(distribution)]


def test_list_versions_help_is_help_not_a_listing():
    done = subprocess.run(
        [sys.executable, "-m", "mnist_exporter.list_versions", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "usage:" in done.stdout and "no versions" not in done.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "mnist_exporter.list_versions"], capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode == 2 and "MODEL_BASE_PATH" in wrong.stderr


def test_mnist_train_help_names_exit_status_143():
    from mnist_trainer.config import build_parser

    assert "143" in " ".join(build_parser().format_help().split())


def test_mnist_data_says_up_to_date_in_words(data_dir, capsys):
    from mnist_common import prepare_data

    assert prepare_data.main(["--out", data_dir]) == 0
    line = capsys.readouterr().out.strip()
    assert "up to date" in line
    assert "{" not in line and "'" not in line
    for split in ("train", "validation", "test"):
        assert f" {split}" in line


def test_standin_defaults_to_the_model_name_everything_else_uses_and_shows_every_default():
    from tfserving_standin.cli import build_parser

    parser = build_parser()
    assert parser.parse_args([]).model_name == "mnist"
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if action.option_strings and action.default not in (None, "==SUPPRESS==") and action.dest != "help":
            flag = action.option_strings[-1]
            described = text.split(flag, 2)[-1][:400]
            assert "default" in described, f"{flag} does not show its default"


def test_the_readme_says_retrain_publishes_even_if_not_better():
    row = next(
        line for line in (REPO_ROOT / "README.md").read_text().splitlines() if line.startswith("| `make retrain`")
    )
    assert "even if" in row and "not better" in row
