"""The layers are enforced: .importlinter's contracts hold on the code, and they would catch a
library importing a service, a service importing another, or a stand-in layer importing upward."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.paths import REPO_ROOT, VENV_BIN

CONFIG = REPO_ROOT / ".importlinter"
ROOT_PACKAGES = (
    "mnist_serving_protos",
    "mnist_common",
    "mnist_trainer",
    "mnist_exporter",
    "tfserving_standin",
    "mnist_webui",
    "mnist_loadtest",
    "mnist_run",
    "mnist_deploy",
    "mnist_rollout",
    "mnist_bench",
)
STANDIN_PARTS = ("cli", "server", "rest_api", "grpc_api", "core")


def lint_imports(extra_path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path:  # put the given packages ahead of the installed ones
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))
    return subprocess.run(
        [os.path.join(VENV_BIN, "lint-imports"), "--config", os.fspath(CONFIG), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


def test_the_code_keeps_every_layer_contract():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _fake_tree(root, importer: str, imported: str) -> None:
    """Every root package, empty but for one import of `imported` in `importer`'s __init__."""
    for package in ROOT_PACKAGES:
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    for part in STANDIN_PARTS:
        (root / "tfserving_standin" / part).mkdir()
        (root / "tfserving_standin" / part / "__init__.py").write_text("")
    module = root.joinpath(*importer.split("."), "__init__.py")
    module.write_text(f"import {imported}\n")


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("mnist_common", "mnist_exporter"),  # the shared library imports a service
        ("mnist_webui", "tfserving_standin"),  # a service imports another
        ("mnist_exporter", "mnist_run"),  # a service imports a tool
        ("mnist_run", "mnist_rollout"),  # one tool imports another beside it
        ("tfserving_standin.core", "tfserving_standin.rest_api"),  # the stand-in's core imports an API
        ("tfserving_standin.rest_api", "tfserving_standin.grpc_api"),  # one API imports the other
    ],
)
def test_a_forbidden_import_breaks_the_contract(tmp_path, importer, imported):
    _fake_tree(tmp_path, importer, imported)
    result = lint_imports(os.fspath(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert f"{importer} -> {imported}" in result.stdout, result.stdout


def test_the_fake_tree_alone_keeps_the_contracts(tmp_path):
    """The violation tests' tree is otherwise clean, so what breaks them is the one import."""
    _fake_tree(tmp_path, "mnist_bench", "mnist_common")  # downward: allowed
    result = lint_imports(os.fspath(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
