"""make images / push / kind-load, each image looked up with its own tag, against a recording
`docker` and `kind`: the loop over the images, the tags and labels handed to each build, and the
failed build that names its image. (tests/containers runs the same targets on a real engine.)"""

from __future__ import annotations

import os
import stat

import pytest

from tests.deploy.test_make_and_pipelines import IMAGE_DIRS, make


def recording_tool(tmp_path, name: str, fail_when: str = "") -> tuple[str, object]:
    """A fake `name` that logs each call's arguments as one line and exits 1 when they contain
    fail_when (the engine check `docker info` always succeeds)."""
    log = tmp_path / f"{name}.log"
    path = tmp_path / name
    fail = f'case "$*" in *"{fail_when}"*) echo "{name}: failing on purpose" >&2; exit 1;; esac\n' if fail_when else ""
    path.write_text(f'#!/bin/sh\n[ "$1" = info ] && exit 0\necho "$*" >> {log}\n{fail}exit 0\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return os.fspath(path), log


@pytest.fixture(scope="module")
def tags() -> dict[str, str]:
    result = make("image-tags")
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.split())


def calls(log) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_images_builds_each_image_with_its_own_content_tag_and_labels(tmp_path, tags):
    docker, log = recording_tool(tmp_path, "docker")
    result = make("images", f"DOCKER={docker}", "GIT_COMMIT=0123abc", "PYTHON_IMAGE=base:here")
    assert result.returncode == 0, result.stdout + result.stderr
    builds = calls(log)
    assert len(builds) == 3
    for build, (name, directory) in zip(builds, IMAGE_DIRS.items(), strict=True):
        assert build.startswith("build ")
        assert f"-f services/{directory}/Dockerfile -t mnist.local/{name}:{tags[name]} ." in build
        assert f"--build-arg CONTENT_TAG={tags[name]}" in build
        assert "--build-arg GIT_COMMIT=0123abc" in build and "--build-arg PYTHON_IMAGE=base:here" in build
    assert len(set(tags.values())) == 3, "each image has a tag of its own content"


def test_without_python_image_the_dockerfiles_own_base_is_used(tmp_path):
    docker, log = recording_tool(tmp_path, "docker")
    result = make("images", f"DOCKER={docker}", "IMAGE_TAG=t1")
    assert result.returncode == 0, result.stderr
    assert all("PYTHON_IMAGE" not in build for build in calls(log))


def test_a_failed_build_fails_images_naming_the_image_and_stops(tmp_path):
    docker, log = recording_tool(tmp_path, "docker", fail_when="services/model-exporter/Dockerfile")
    result = make("images", f"DOCKER={docker}", "IMAGE_TAG=t1")
    assert result.returncode != 0
    assert "the image mnist-model-exporter did not build (services/model-exporter/Dockerfile" in result.stderr
    assert "make base-image" in result.stderr  # no PYTHON_IMAGE given: the hint for hosts without a registry
    assert [build.split(" -t ")[1].split()[0] for build in calls(log)] == [
        "mnist.local/mnist-trainer:t1",
        "mnist.local/mnist-model-exporter:t1",
    ]


def test_push_pushes_each_image_with_its_tag(tmp_path, tags):
    docker, log = recording_tool(tmp_path, "docker")
    result = make("push", f"DOCKER={docker}", "REGISTRY=127.0.0.1:5999/mnist")
    assert result.returncode == 0, result.stderr
    pushes = [call for call in calls(log) if call.startswith("push ")]
    assert pushes == [f"push 127.0.0.1:5999/mnist/{name}:{tags[name]}" for name in IMAGE_DIRS]


def test_a_failed_push_names_the_image(tmp_path):
    docker, _ = recording_tool(tmp_path, "docker", fail_when="push 127.0.0.1:5999/mnist/mnist-web-ui")
    result = make("push", f"DOCKER={docker}", "REGISTRY=127.0.0.1:5999/mnist", "IMAGE_TAG=t1")
    assert result.returncode != 0 and "pushing 127.0.0.1:5999/mnist/mnist-web-ui:t1 failed" in result.stderr


def test_kind_load_loads_each_image_with_its_tag(tmp_path, tags):
    kind, log = recording_tool(tmp_path, "kind")
    result = make("kind-load", f"KIND={kind}", "KIND_CLUSTER=demo")
    assert result.returncode == 0, result.stderr
    assert calls(log) == [f"load docker-image --name demo mnist.local/{name}:{tags[name]}" for name in IMAGE_DIRS]


def test_a_failed_kind_load_names_the_image(tmp_path):
    kind, _ = recording_tool(tmp_path, "kind", fail_when="mnist-trainer")
    result = make("kind-load", f"KIND={kind}", "IMAGE_TAG=t1")
    assert result.returncode != 0 and "loading mnist.local/mnist-trainer:t1 into kind cluster" in result.stderr


def test_image_names_picks_the_images_and_refuses_an_unknown_one(tmp_path, tags):
    docker, log = recording_tool(tmp_path, "docker")
    result = make("images", f"DOCKER={docker}", "IMAGE_NAMES=mnist-web-ui")
    assert result.returncode == 0, result.stderr
    (build,) = calls(log)
    assert f"-t mnist.local/mnist-web-ui:{tags['mnist-web-ui']} ." in build
    result = make("push", f"DOCKER={docker}", "REGISTRY=127.0.0.1:5999/mnist", "IMAGE_NAMES=mnist-webui")
    assert result.returncode == 2 and "IMAGE_NAMES: no image mnist-webui" in result.stderr
