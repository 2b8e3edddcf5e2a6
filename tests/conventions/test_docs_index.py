"""docs/README.md lists every doc and every README, and each of its links leads to a file.

"Every" is whatever git tracks or would add (untracked, not ignored): a Markdown file anywhere,
and any file under docs/. A new doc or README fails this test until the index links it.
"""

from __future__ import annotations

import re
import subprocess

from tests.support.paths import REPO_ROOT

INDEX = REPO_ROOT / "docs" / "README.md"


def documents() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return {
        name for name in listed if (name.endswith(".md") or name.startswith("docs/")) and (REPO_ROOT / name).is_file()
    }


def linked() -> set[str]:
    targets = re.findall(r"\]\(([^)#\s]+)", INDEX.read_text())
    return {(INDEX.parent / target).resolve().relative_to(REPO_ROOT).as_posix() for target in targets}


def test_the_index_lists_every_doc_and_readme():
    missing = sorted(documents() - linked() - {"docs/README.md"})
    assert not missing, f"docs/README.md does not link: {', '.join(missing)}"


def test_every_link_of_the_index_leads_to_a_file():
    broken = sorted(target for target in linked() if not (REPO_ROOT / target).is_file())
    assert not broken, f"docs/README.md links to missing files: {', '.join(broken)}"


def test_the_index_knows_the_docs_found_so_far():
    assert {"README.md", "docs/serving-contract.md", "tools/mnist_bench/README.md"} <= linked()
