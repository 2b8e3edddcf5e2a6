"""The repository is licensed (Apache-2.0, as the Kubeflow examples are) and every package says so."""

from __future__ import annotations

import tomllib

import pytest

from tests.support.paths import REPO_ROOT

PYPROJECTS = sorted(REPO_ROOT.glob("*/pyproject.toml")) + sorted(REPO_ROOT.glob("*/*/pyproject.toml"))


def test_license_file_is_apache_2():
    text = (REPO_ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0" in text


def test_there_are_packages():
    assert len(PYPROJECTS) >= 9


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(REPO_ROOT)))
def test_every_package_has_license_readme_and_urls(path):
    project = tomllib.loads(path.read_text())["project"]
    assert project.get("license") == "Apache-2.0"
    assert (path.parent / project["readme"]).is_file()
    assert project.get("urls")


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(REPO_ROOT)))
def test_package_data_globs_only_where_the_package_has_such_files(path):
    package_data = tomllib.loads(path.read_text()).get("tool", {}).get("setuptools", {}).get("package-data", {})
    for _package, globs in package_data.items():
        matched = [p for glob in globs for p in (path.parent / "src").glob(f"*/{glob}")]
        assert matched, f"{path}: package-data {globs} matches no file"
