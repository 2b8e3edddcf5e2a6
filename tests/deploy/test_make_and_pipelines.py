"""The make targets' messages when a tool or setting is missing, and the CI pipelines agreeing
with the Makefile and the manifests."""

from __future__ import annotations

import os
import re
import stat
import subprocess

import pytest
import yaml

from mnist_deploy.render import SETTING_HELP
from tests.deploy.renders import KUSTOMIZE, REPO_ROOT

IMAGE_DIRS = {"mnist-trainer": "trainer", "mnist-model-exporter": "model-exporter", "mnist-web-ui": "web-ui"}


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    # The caller's deploy and image settings (.ci/run exports PYTHON_IMAGE and DOCKER) would
    # change what these tests assert; each test passes the ones it means.
    for name in ("PROJECT_ID", "REGISTRY", "DOMAIN", "OVERLAY", "IMAGE_TAG", "GCS_BUCKET", "PYTHON_IMAGE", "DOCKER"):
        environment.pop(name, None)
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def fake_docker(tmp_path):
    """A `docker` whose `info` works, so the targets get past the engine check."""
    path = tmp_path / "docker"
    path.write_text('#!/bin/sh\n[ "$1" = info ] && exit 0\necho "fake docker: $*"\nexit 1\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return os.fspath(path)


def test_images_without_docker_says_to_install_it(tmp_path):
    result = make("images", f"DOCKER={tmp_path}/docker", "IMAGE_TAG=abc")
    assert result.returncode != 0 and "not found: install Docker" in result.stderr


def test_push_without_a_project_says_where_to_push(fake_docker):
    result = make("push", f"DOCKER={fake_docker}", "IMAGE_TAG=abc")
    assert result.returncode != 0 and "nowhere to push: set PROJECT_ID" in result.stderr


def test_render_gke_without_a_project_says_so(tmp_path):
    result = make("render", "OVERLAY=gke", "IMAGE_TAG=abc", f"ARTIFACTS={tmp_path}")
    assert result.returncode != 0 and "OVERLAY=gke pulls images from a registry: set PROJECT_ID" in result.stderr


def test_render_gke_names_each_missing_setting(tmp_path):
    result = make("render", "OVERLAY=gke", "IMAGE_TAG=abc", "PROJECT_ID=demo", f"ARTIFACTS={tmp_path}")
    assert result.returncode != 0
    assert "DOMAIN: the DNS name" in result.stderr and "PROJECT_ID:" not in result.stderr


def test_an_unknown_overlay_is_named(tmp_path):
    result = make("render", "OVERLAY=prod", "IMAGE_TAG=abc", f"ARTIFACTS={tmp_path}")
    assert result.returncode != 0 and "no overlay 'prod'" in result.stderr


def test_render_gke_writes_manifests_with_the_registry_images(tmp_path):
    result = make(
        "render",
        "OVERLAY=gke",
        "IMAGE_TAG=0a1b2c3d4e5f",
        "PROJECT_ID=demo",
        "REGION=europe-west4",
        "DOMAIN=mnist.example.com",
        f"ARTIFACTS={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "deploy" / "gke.yaml").read_text()
    for name in IMAGE_DIRS:
        assert f"image: europe-west4-docker.pkg.dev/demo/mnist/{name}:0a1b2c3d4e5f" in text
    assert "bucketName: demo-mnist" in text


def test_deploy_without_a_cluster_says_how_to_get_one(tmp_path):
    result = make(
        "status",
        "IMAGE_TAG=abc",
        f"ARTIFACTS={tmp_path}",
        env={"KUBECONFIG": os.fspath(tmp_path / "none"), "KUBERNETES_SERVICE_HOST": ""},
    )
    assert result.returncode != 0 and "no Kubernetes cluster configured" in result.stderr


def placeholders() -> set[str]:
    found = set()
    for path in KUSTOMIZE.rglob("*.yaml"):
        found |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", path.read_text()))
    return found


def test_every_setting_in_the_manifests_is_explained_and_passed_by_make_and_cloud_build():
    settings = placeholders()
    assert settings == {"PROJECT_ID", "GCS_BUCKET", "DOMAIN", "STATIC_IP_NAME"}
    assert settings <= set(SETTING_HELP)
    makefile = (REPO_ROOT / "mk" / "70-deploy.mk").read_text()
    cloudbuild = (REPO_ROOT / ".ci" / "cloudbuild.yaml").read_text()
    for name in settings:
        assert f"--set {name}=" in makefile, name
        assert f' {name}="' in cloudbuild, name  # Cloud Build passes it to make deploy


def test_cloud_build_builds_pushes_and_deploys_the_same_images():
    build = yaml.safe_load((REPO_ROOT / ".ci" / "cloudbuild.yaml").read_text())
    steps = {step["id"]: step for step in build["steps"]}
    for name, directory in IMAGE_DIRS.items():
        scripts = [
            step["script"] for step in steps.values() if f"-f services/{directory}/Dockerfile" in step.get("script", "")
        ]
        assert len(scripts) == 1 and f"/{name}:${{tag}}" in scripts[0] and 'docker push "$image"' in scripts[0]
        assert f"tag=\"$(sed -n 's/^{name}=//p' artifacts/cloudbuild/image-tags)\"" in scripts[0]
    assert set(steps["deploy"]["waitFor"]) == {"trainer-image", "exporter-image", "web-ui-image"}
    # The deploy step is make's own deploy, with the registry the images were pushed to and their tags.
    deploy = steps["deploy"]["script"]
    assert "make gke-credentials deploy " in deploy and 'CONTENT_TAGS="$tags"' in deploy
    assert 'REGISTRY="${_REGION}-docker.pkg.dev/${PROJECT_ID}/${_REPOSITORY}"' in deploy
    makefile = (REPO_ROOT / "mk" / "70-deploy.mk").read_text()
    assert re.search(r"^IMAGES := (.+)$", makefile, re.M).group(1).split() == [
        f"{n}={d}" for n, d in IMAGE_DIRS.items()
    ]


def test_the_github_workflow_tests_then_deploys_to_kind():
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yaml").read_text())
    jobs = workflow["jobs"]
    commands = lambda job: "\n".join(step.get("run", "") for step in jobs[job]["steps"])  # noqa: E731
    assert ".ci/run" in commands("test")
    assert jobs["e2e-kind"]["needs"] == "test"
    e2e = commands("e2e-kind")
    for command in ("make images", "make kind-load", "make deploy OVERLAY=local", "/v1/models/mnist", "/readyz"):
        assert command in e2e
    assert any("kind-action" in step.get("uses", "") for step in jobs["e2e-kind"]["steps"])


def test_make_deploy_passes_the_timeouts_and_flags(tmp_path):
    result = make(
        "-n",
        "deploy",
        "IMAGE_TAG=abc",
        f"ARTIFACTS={tmp_path}",
        "DEPLOY_TIMEOUTS=training=10800 serving=600",
        "DEPLOY_FLAGS=--give-up-after 600",
    )
    assert result.returncode == 0, result.stderr
    commands = result.stdout.replace("\\\n", " ").splitlines()  # continued lines as one
    command = next(line for line in commands if "mnist-deploy deploy" in line)
    assert "--timeout training=10800 --timeout serving=600 --give-up-after 600" in " ".join(command.split())


def test_make_deploy_train_force_passes_rerun_jobs(tmp_path):
    forced = make("-n", "deploy", "IMAGE_TAG=abc", f"ARTIFACTS={tmp_path}", "TRAIN=force")
    plain = make("-n", "deploy", "IMAGE_TAG=abc", f"ARTIFACTS={tmp_path}")
    assert forced.returncode == 0 and plain.returncode == 0, forced.stderr + plain.stderr
    assert "--rerun-jobs" in forced.stdout and "--rerun-jobs" not in plain.stdout
