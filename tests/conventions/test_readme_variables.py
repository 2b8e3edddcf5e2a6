"""Every variable a make target reads with a default (`NAME ?= ...` in the Makefile or mk/*.mk)
is explained in the README's variables table."""

from __future__ import annotations

import re

from tests.support.paths import REPO_ROOT

MAKE_FILES = [REPO_ROOT / "Makefile", *sorted((REPO_ROOT / "mk").glob("*.mk"))]


def make_variables() -> set[str]:
    pattern = re.compile(r"^(?:export\s+)?([A-Z][A-Z0-9_]*)\s*\?=", re.MULTILINE)
    return {name for path in MAKE_FILES for name in pattern.findall(path.read_text())}


def readme_table_variables() -> set[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Variables\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def test_the_make_files_declare_variables():
    assert {"VENV", "MODEL_NAME", "TRAIN_DIR", "DOCKER"} <= make_variables()


def test_every_make_variable_is_in_the_readme_table():
    missing = sorted(make_variables() - readme_table_variables())
    assert not missing, f"README.md's variables table lacks: {', '.join(missing)}"
