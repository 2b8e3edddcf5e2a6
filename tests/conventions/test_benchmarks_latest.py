"""docs/benchmarks.md's targets table gives, per benchmark, its latest figure with the date, the
machine and the commit, and that is the newest entry of the benchmark's own section.

Each row of the targets table names its command (`make bench-train`); its section is the `## `
heading naming the same command, down to the next `## ` heading (its `### ` subsections
included). The latest figure's date must be the newest date written anywhere in that section,
and its commit must appear there too: a newer figure recorded below, by anyone, fails this test
until the table says it.
"""

from __future__ import annotations

import re

from tests.support.paths import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "benchmarks.md"
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
LATEST = re.compile(
    r"\((?P<date>20\d\d-\d\d-\d\d), (?P<machine>[^,()]+(?:\([^)]*\))?[^,()]*), (?P<commit>[0-9a-f]{7,40})\)\s*$"
)


def targets_rows() -> list[dict[str, str]]:
    section = PAGE.read_text().split("\n## Targets\n", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    return [
        dict(zip(header, (cell.strip() for cell in row.strip("|").split(" | ")), strict=False)) for row in table[2:]
    ]


def section_of(command: str) -> str:
    text = PAGE.read_text()
    for part in text.split("\n## ")[1:]:
        heading = part.split("\n", 1)[0]
        if f"`{command}`" in heading:
            return part
    raise AssertionError(f"docs/benchmarks.md has no `## ` section whose heading names {command}")


def test_every_benchmark_has_its_latest_figure_with_date_machine_and_commit():
    rows = targets_rows()
    assert rows and "latest figure (date, machine, commit)" in rows[0]
    for row in rows:
        latest = LATEST.search(row["latest figure (date, machine, commit)"])
        assert latest, f"{row['benchmark']}: the latest figure must end with (date, machine, commit)"


def test_the_latest_figure_is_the_newest_of_its_section():
    for row in targets_rows():
        command = re.search(r"`([^`]+)`", row["command"]).group(1)
        section = section_of(command)
        latest = LATEST.search(row["latest figure (date, machine, commit)"])
        newest = max(DATE.findall(section))
        assert latest["date"] == newest, (
            f"{command}: the table's latest figure is of {latest['date']}, the section has {newest}"
        )
        assert latest["commit"] in section, f"{command}: commit {latest['commit']} is not in its section"
