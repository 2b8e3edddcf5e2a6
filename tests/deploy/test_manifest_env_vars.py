"""Every environment variable a rendered manifest gives one of our containers (env and envFrom a
ConfigMap) is one the code in that image reads: a variable renamed in a manifest but not in the
code (or the other way round) would be silently ignored in the cluster and the default used."""

from __future__ import annotations

import re

import pytest

from tests.deploy.renders import REPO_ROOT, TARGETS, TEST_IMAGES
from tests.deploy.test_dockerfiles import local_requirements
from tests.deploy.test_make_and_pipelines import IMAGE_DIRS


def read_by_image(image: str) -> str:
    """The Python sources an image carries: its service and the local libraries it installs."""
    service = f"services/{IMAGE_DIRS[image]}"
    folders = [service, *sorted(local_requirements(service))]
    return "\n".join(
        path.read_text() for folder in folders for path in sorted((REPO_ROOT / folder / "src").rglob("*.py"))
    )


def env_names(container: dict, config_maps: dict[str, dict]) -> list[str]:
    names = [entry["name"] for entry in container.get("env", [])]
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names += list(config_maps[source["configMapRef"]["name"]].get("data", {}))
    return names


def pod_specs(obj: dict) -> list[dict]:
    spec = obj.get("spec", {})
    if obj["kind"] == "TFJob":
        return [replica["template"]["spec"] for replica in spec["tfReplicaSpecs"].values()]
    if obj["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    template = spec.get("template", {}).get("spec")
    return [template] if template else []


@pytest.mark.parametrize("target", TARGETS)
def test_each_variable_a_manifest_sets_is_read_by_the_image_it_is_set_for(renders, target):
    objects = renders[target]
    config_maps = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "ConfigMap"}
    images = {ref: name for name, ref in TEST_IMAGES.items()}
    checked = 0
    for obj in objects:
        for pod in pod_specs(obj):
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                image = images.get(container["image"])
                if image is None:  # tensorflow/serving and other upstream images read their own
                    continue
                sources = read_by_image(image)
                for name in env_names(container, config_maps):
                    checked += 1
                    assert re.search(rf"""["']{re.escape(name)}["']""", sources), (
                        f"{target}: {obj['kind']}/{obj['metadata']['name']} container {container['name']} sets "
                        f"{name}, which no code in the {image} image reads (renamed in the manifest or the code?)"
                    )
    assert checked, f"{target}: no variables checked"
