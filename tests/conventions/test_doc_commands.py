"""Every shell block of every README and doc works as printed, in a fresh shell from the repo root.

Each ```sh block is one of three kinds, said by the line right above its fence:

- `<!-- shell: from PATH -->`: the block is PATH's text from its first command on, byte for byte
  (set-up included): the script is the thing tested (tests/run runs the quickstart's);
- `<!-- shell: runs -->`: this test runs the block with bash from the repository root, in an
  environment without the variables a make call or a script would have set;
- no marker: every command is checked as far as it can be without a cluster or minutes of CPU:
  each `make` target exists and each `NAME=value` is a variable the make files read, each of this
  repository's commands exists and knows every `--flag` given to it, each path the block names
  exists (unless make writes it), and no variable is used that the block does not set. No `...`
  placeholders: what is printed is what a reader pastes.

The check finds blocks in every Markdown file git knows or would add, so a new doc is checked
the day it appears.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import pytest

from tests.support.make import VENV, make
from tests.support.paths import REPO_ROOT, VENV_BIN

SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
MARKER = re.compile(r"^<!-- shell: (runs|from (\S+)) -->$")
# Commands of other projects a doc may show: not installed here, so only their paths are checked.
OTHER_TOOLS = {"kubectl", "kind", "minikube", "gcloud", "docker", "curl", "bash", "cp", "git", "sudo", "apt-get"}
# Variables a reader's shell has before any block runs.
SHELL_VARIABLES = {"HOME", "PATH", "PWD", "USER", "SHELL"}
# Folders make and the tools write into: a path there need not exist before the block runs.
WRITTEN_FOLDERS = ("artifacts/", "out/")


def markdown_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(REPO_ROOT / name for name in set(listed) if (REPO_ROOT / name).is_file())


def shell_blocks(path: Path) -> list[tuple[int, str, str]]:
    """(line number of the fence, the marker line above it or "", the block's text) for each shell block."""
    lines = path.read_text().splitlines(keepends=True)
    blocks, index = [], 0
    while index < len(lines):
        fence = re.match(r"^(`{3,})\s*(\S*)", lines[index])
        if not fence:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].startswith(fence.group(1))), len(lines))
        if fence.group(2).lower() in SHELL_LANGUAGES:
            marker = lines[index - 1].strip() if index and MARKER.match(lines[index - 1].strip()) else ""
            blocks.append((index + 1, marker, "".join(lines[index + 1 : end])))
        index = end + 1
    return blocks


def all_blocks():
    for path in markdown_files():
        for line, marker, text in shell_blocks(path):
            yield pytest.param(path, marker, text, id=f"{path.relative_to(REPO_ROOT)}:{line}")


def commands(text: str) -> list[list[str]]:
    """Each command of a block as words: continuation lines joined, comments and heredoc bodies
    dropped, and a line split at `;`, `&&`, `||`, `|` and `&`."""
    joined, heredoc_end = [], None
    for line in text.replace("\\\n", " ").splitlines():
        if heredoc_end is not None:
            heredoc_end = None if line.strip() == heredoc_end else heredoc_end
            continue
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)", line)
        if heredoc:
            heredoc_end = heredoc.group(1)
            line = line[: heredoc.start()]
        joined.append(line)
    result = []
    for line in joined:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for word in lexer:
            if set(word) <= set(";&|()"):
                result.append(words)
                words = []
            else:
                words.append(word)
        result.append(words)
    return [words for words in result if words]


@cache
def make_targets() -> set[str]:
    listed = make("-s", "help", env={"TERM": "dumb"})
    assert listed.returncode == 0, listed.stderr
    return {line.split()[0] for line in listed.stdout.splitlines() if line.startswith("  ") and line.split()}


@cache
def make_variables() -> set[str]:
    text = "\n".join(p.read_text() for p in [REPO_ROOT / "Makefile", *sorted((REPO_ROOT / "mk").glob("*.mk"))])
    declared = re.findall(r"^(?:export\s+)?([A-Z][A-Z0-9_]*)\s*[?:]?=", text, re.MULTILINE)
    read = re.findall(r"\$[({]([A-Z][A-Z0-9_]*)[)}]", text)
    return set(declared) | set(read)


@cache
def help_text(command: tuple[str, ...]) -> str:
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, f"`{' '.join(command)} --help` failed: {done.stderr[-800:]}"
    return done.stdout


def repository_commands() -> set[str]:
    return {path.name for path in Path(VENV_BIN).iterdir()}


def check_command(words: list[str]) -> list[str]:
    problems = []
    program = words[0]
    while "=" in program and len(words) > 1:  # VAR=value make ...: the environment of one command
        words = words[1:]
        program = words[0]
    name = Path(program).name
    if "..." in words:
        problems.append(f"`{' '.join(words)}`: '...' is not a command; print one that runs")
    if program == "make":
        for word in words[1:]:
            if word.startswith("-"):
                continue
            if "=" in word:
                variable = word.split("=", 1)[0]
                if variable not in make_variables():
                    problems.append(f"`{' '.join(words)}`: no make file reads {variable}")
            elif word not in make_targets():
                problems.append(f"`{' '.join(words)}`: no target '{word}' in `make help`")
    elif program.startswith(".venv/bin/") or (name in repository_commands() and "/" not in program):
        if not (Path(VENV_BIN) / name).exists():
            problems.append(f"`{' '.join(words)}`: {name} is not installed by make setup")
        elif name not in {"python", "kubectl", "locust"}:
            subcommand = tuple(w for w in words[1:2] if not w.startswith("-"))
            text = help_text((str(Path(VENV_BIN) / name), *subcommand))
            for flag in (w.split("=", 1)[0] for w in words[1:] if w.startswith("--")):
                if flag != "--help" and flag not in text:
                    problems.append(f"`{' '.join(words)}`: `{name} {' '.join(subcommand)}` has no {flag}")
    elif name not in OTHER_TOOLS and program not in ("for", "do", "done", "export", "echo", "sleep", "cd"):
        problems.append(f"`{' '.join(words)}`: '{program}' is neither this repository's nor a known tool")
    for word in words[1:]:
        value = word.split("=", 1)[1] if re.match(r"^-{0,2}[\w-]+=", word) else word
        if (
            re.match(r"^(\./)?[\w.-]+(/[\w.-]+)+/?$", value)
            and not value.startswith(WRITTEN_FOLDERS)
            and "://" not in value
            and not re.match(r"^[\w.-]+/[\w.-]+:", value)
            and (REPO_ROOT / value.split("/")[0]).exists()
            and not (REPO_ROOT / value).exists()
        ):
            problems.append(f"`{' '.join(words)}`: {value} does not exist")
    return problems


def unset_variables(text: str) -> set[str]:
    assigned = set(re.findall(r"(?:^|[\s;(])(?:export\s+|local\s+)?([A-Za-z_]\w*)=", text, re.MULTILINE))
    assigned |= set(re.findall(r"\bfor\s+(\w+)\s+in\b", text))
    code = re.sub(r"<<-?\s*'(\w+)'\n.*?\n\1\n", "", text, flags=re.DOTALL)  # quoted heredocs expand nothing
    code = re.sub(r"'[^'\n]*'", "''", code)  # nor do single quotes
    code = re.sub(r"\$\{\w+:?[-=][^}]*\}", "", code)  # ${NAME:-default} has its default
    used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", code))
    return used - assigned - SHELL_VARIABLES


@pytest.mark.parametrize(("path", "marker", "text"), list(all_blocks()))
def test_every_shell_block_works_as_printed(path, marker, text):
    relative = path.relative_to(REPO_ROOT)
    kind = MARKER.match(marker)
    if kind and kind.group(2):
        script = (REPO_ROOT / kind.group(2)).read_text()
        first_command = next(i for i, line in enumerate(script.splitlines(keepends=True)) if not line.startswith("#"))
        shown = "".join(script.splitlines(keepends=True)[first_command:]).lstrip("\n")
        assert text == shown, f"{relative}: the block differs from {kind.group(2)} (from its first command on)"
        return
    missing = unset_variables(text)
    assert not missing, f"{relative}: the block uses {', '.join(sorted(missing))} without setting it"
    if kind:  # runs
        env = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
        env["VENV"] = VENV
        done = subprocess.run(["bash", "-c", text], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"{relative}: the block failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return
    problems = [problem for words in commands(text) for problem in check_command(words)]
    assert not problems, f"{relative}:\n" + "\n".join(problems)


def test_the_checks_find_the_blocks_of_every_doc():
    found = {path.relative_to(REPO_ROOT).as_posix() for path, _, _ in (p.values for p in all_blocks())}
    assert {"README.md", "kustomize/README.md", "services/web-ui/README.md"} <= found


def test_a_block_using_a_variable_it_never_sets_is_caught():
    # The README's quickstart once used $REST_PORT and $body set only by its script's first lines.
    assert unset_variables('curl "http://localhost:$REST_PORT/x" -d @"$body/rows.json"\n') == {"REST_PORT", "body"}
    assert unset_variables('export REST_PORT=${REST_PORT:-8501}\nbody=$(mktemp -d)\ncurl "$REST_PORT$body"\n') == set()
    assert unset_variables('"${VENV:-.venv}/bin/python" -c pass\n') == set()


def test_a_wrong_target_variable_or_flag_is_caught():
    assert check_command(["make", "no-such-target"])
    assert check_command(["make", "run", "NO_SUCH_VARIABLE=1"])
    assert check_command(["make", "deploy", "OVERLAY=gke", "..."])
    assert check_command([".venv/bin/mnist-export", "--no-such-flag"])
    assert not check_command(["make", "run", "UI_PORT=8081"])
