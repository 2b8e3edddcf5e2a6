"""`make test-<area>` exists for every folder of tests/, is listed by `make help`, and the names
from before the folders were renamed still work."""

from __future__ import annotations

import pytest

from tests.support.make import make
from tests.support.paths import REPO_ROOT

AREAS = sorted(p.parent.name for p in REPO_ROOT.glob("tests/*/test_*.py") if p.parent.name != "support")
HELP = make("help").stdout


def test_there_are_areas():
    assert {"trainer", "web_ui", "tf_serving", "deploy", "common"} <= set(AREAS)


@pytest.mark.parametrize("area", sorted(set(AREAS)))
def test_every_area_has_a_target_that_runs_its_folder(area):
    target = "test-" + area.replace("_", "-")
    result = make("-n", target)
    assert result.returncode == 0, result.stderr
    assert f"pytest tests/{area}" in result.stdout
    assert any(line.split()[:1] == [target] for line in HELP.splitlines()), f"make help does not list {target}"


@pytest.mark.parametrize(
    "old, folder",
    [
        ("test-export", "model_exporter"),
        ("test-serving", "tf_serving"),
        ("test-trainer", "trainer"),
        ("test-resilience", "resilience"),
    ],
)
def test_the_old_names_still_work(old, folder):
    result = make("-n", old)
    assert result.returncode == 0 and f"pytest tests/{folder}" in result.stdout
