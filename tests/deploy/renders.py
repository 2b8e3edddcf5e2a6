"""What the deploy tests render: every kustomization a user can deploy or that tests a combination
of components, with test images and settings, and a lookup of one object in a render."""

from __future__ import annotations

import pathlib
import sys

from tests.support.paths import KUSTOMIZE, REPO_ROOT

__all__ = ["KUBECTL", "KUSTOMIZE", "REPO_ROOT", "TARGETS", "TEST_IMAGES", "TEST_SETTINGS", "find"]

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


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]
