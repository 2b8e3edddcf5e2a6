"""The defaults the README's variables table states are the code's defaults.

A row names variables and, in the same order, their defaults separated by ", ". Each stated
default that is a value (in backticks, or a bare word with a digit in it such as `14`, `0.003`,
`60s`), or `none`/`empty`, is compared with the default the code has: the make files' (evaluated
by make itself, so `$(ARTIFACTS)/...` counts as what it expands to), or, for a variable make only
passes on, the one the program that reads it states in its `--help` (`env EPOCHS; default 14`).
A stated value the code has nowhere fails, as does one that differs. Prose ("the local server")
is left to the reader. A backticked NAME is another variable: its default is compared.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

from tests.support.paths import REPO_ROOT, VENV_BIN

NO_VALUE = {"none", "empty"}


def readme_rows() -> list[tuple[list[str], list[str]]]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Variables\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        rows.append((names, split_defaults(cells[1])))
    return rows


def split_defaults(cell: str) -> list[str]:
    """The cell's defaults in order: split at ", " outside backticks and brackets."""
    parts, depth, quoted, current = [], 0, False, ""
    index = 0
    while index < len(cell):
        char = cell[index]
        if char == "`":
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        if not quoted and depth == 0 and cell.startswith(", ", index):
            parts.append(current.strip())
            current, index = "", index + 2
            continue
        current += char
        index += 1
    parts.append(current.strip())
    return parts


def stated_value(text: str) -> str | None:
    """The value a default cell states, or None for prose."""
    text = re.sub(r"\s*\([^)]*\)$", "", text)  # "330 (Poisson arrivals)": the value and a remark
    backticked = re.fullmatch(r"`([^`]*)`", text)
    if backticked:
        return backticked.group(1)
    if text.lower() in NO_VALUE:
        return ""
    if re.fullmatch(r"[\w.:/-]*\d[\w.:/-]*", text):
        return text
    return None


@cache
def make_default(name: str) -> str | None:
    """The value make gives `name` with nothing set, or None when no make file sets it."""
    text = "\n".join(p.read_text() for p in [REPO_ROOT / "Makefile", *sorted((REPO_ROOT / "mk").glob("*.mk"))])
    if not re.search(rf"^(?:export\s+)?{name}\s*[?:]?=", text, re.MULTILINE):
        return None
    env = {key: value for key, value in os.environ.items() if key != name and not key.startswith(("MAKE", "MFLAGS"))}
    printed = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", f"print-default: ; @printf '%s' '$({name})'", "print-default"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    return printed.stdout


@cache
def program_defaults() -> dict[str, str]:
    """`env NAME; default X` from the --help of every command of this repository."""
    found: dict[str, str] = {}
    for program in sorted(Path(VENV_BIN).glob("mnist-*")) + [Path(VENV_BIN) / "tfserving-standin"]:
        done = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=120)
        text = re.sub(r"\s+", " ", done.stdout)
        for name, value in re.findall(r"env ([A-Z][A-Z0-9_]*)[^;()]*; default ([^)]+?)\)", text):
            found.setdefault(name, value.strip())
    return found


def code_default(name: str) -> str | None:
    value = make_default(name)
    if value:  # set (not empty) in make; an empty one is filled in by the program that reads it
        return value
    return program_defaults().get(name, value)


def same(stated: str, actual: str) -> bool:
    if stated == actual:
        return True
    try:
        return float(stated) == float(actual)
    except ValueError:
        return False


def test_every_stated_default_is_the_codes():
    wrong = []
    for names, defaults in readme_rows():
        for name, text in zip(names, defaults, strict=False):
            stated = stated_value(text)
            if stated is None:
                continue
            if re.fullmatch(r"[A-Z][A-Z0-9_]*", stated) and code_default(stated) is not None:
                stated = code_default(stated)
            actual = code_default(name)
            if actual is None:
                wrong.append(f"{name}: the README says {text}, the code sets no default")
            elif not same(stated, actual):
                wrong.append(f"{name}: the README says {text}, the code's default is {actual!r}")
    assert not wrong, "README.md's variables table:\n" + "\n".join(wrong)


def test_the_defaults_are_read_as_a_reader_reads_them():
    assert split_defaults("10, 5, 60s, local stack, `1,16,64`, none") == [
        "10",
        "5",
        "60s",
        "local stack",
        "`1,16,64`",
        "none",
    ]
    assert [stated_value(t) for t in ("14", "`artifacts`", "none", "local stack", "330 (Poisson arrivals)")] == [
        "14",
        "artifacts",
        "",
        None,
        "330",
    ]


def test_the_trainers_defaults_are_found():
    # EPOCHS drifted once (the README said 12 while the trainer used 14): its default is read.
    assert code_default("EPOCHS") == program_defaults()["EPOCHS"]
    assert code_default("EPOCHS").isdigit()
    assert make_default("GRPC_PORT") == "8500"
