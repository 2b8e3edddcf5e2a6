"""Every overlay and component combination builds the way Argo CD and Flux build it: a plain
`kubectl kustomize DIR` (kustomize's default load restrictor), with no flag, and the TF Serving
config still comes from its one copy."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.deploy.renders import KUSTOMIZE, REPO_ROOT, TARGETS, find

CONFIG_FILES = ("models.config", "monitoring.config", "batching_parameters.txt")


def plain_build(kubectl: str, target: str) -> list[dict]:
    result = subprocess.run(
        [kubectl, "kustomize", os.fspath(KUSTOMIZE / target)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{target}: {result.stderr.strip()}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("target", TARGETS)
def test_builds_with_plain_kubectl_kustomize(kubectl, target):
    objects = plain_build(kubectl, target)
    config_map = next(
        obj for obj in objects if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("tf-serving-config")
    )
    # The Deployment mounts the generated (hash-suffixed) ConfigMap, not a name that does not exist.
    serving = find(objects, "Deployment", "tf-serving")["spec"]["template"]["spec"]
    volume = next(v for v in serving["volumes"] if v["name"] == "config")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert config_map["metadata"]["namespace"] == "mnist"


def test_the_serving_config_has_one_copy():
    """The files make serve / serve-docker read are the only copy in the repository."""
    source = REPO_ROOT / "services" / "tf-serving" / "config"
    for name in CONFIG_FILES:
        assert (source / name).is_file(), name
        copies = [
            path
            for path in REPO_ROOT.rglob(name)
            if ".venv" not in path.parts and "artifacts" not in path.parts and path.parent != source
        ]
        assert copies == [], f"{name} is also at {copies}"


def test_render_runs_kustomize_without_flags(tmp_path, kubectl):
    """mnist-deploy render calls kustomize exactly as a GitOps tool would."""
    from mnist_deploy import render

    log = tmp_path / "argv"
    wrapper = tmp_path / "kubectl"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{log}"\nexec "{kubectl}" "$@"\n')
    wrapper.chmod(0o755)
    render.run_kustomize(os.fspath(KUSTOMIZE / "overlays" / "local"), os.fspath(wrapper))
    argv = log.read_text().split()
    assert argv[0] == "kustomize" and len(argv) == 2, argv
