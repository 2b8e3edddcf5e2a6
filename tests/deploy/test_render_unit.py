"""The render step on its own: images, settings, and its error messages."""

from __future__ import annotations

import os

import pytest

from mnist_deploy import render
from mnist_deploy.errors import DeployError
from tests.deploy.renders import KUSTOMIZE, TEST_IMAGES


@pytest.mark.parametrize(
    "reference, fields",
    [
        ("r.example/p/mnist-web-ui:abc123", {"newName": "r.example/p/mnist-web-ui", "newTag": "abc123"}),
        ("localhost:5000/mnist-web-ui:abc", {"newName": "localhost:5000/mnist-web-ui", "newTag": "abc"}),
        ("r.example/x@sha256:" + "a" * 64, {"newName": "r.example/x", "digest": "sha256:" + "a" * 64}),
    ],
)
def test_image_references_become_kustomize_image_fields(reference, fields):
    assert render.split_image(reference) == fields


@pytest.mark.parametrize(
    "reference, message",
    [
        ("localhost:5000/mnist-web-ui", "has no tag"),
        ("mnist-web-ui", "has no tag"),
        ("r.example/mnist-web-ui:latest", "not a pinned version"),
    ],
)
def test_unpinned_images_are_refused(reference, message):
    with pytest.raises(DeployError, match=message):
        render.split_image(reference)


def test_the_wrapper_points_at_the_overlay_relatively(tmp_path):
    overlay = KUSTOMIZE / "overlays" / "local"
    wrapper = render.wrapper_kustomization(os.fspath(overlay), TEST_IMAGES, os.fspath(tmp_path))
    (resource,) = wrapper["resources"]
    assert not os.path.isabs(resource)
    assert os.path.samefile(tmp_path / resource, overlay)
    assert {image["name"] for image in wrapper["images"]} == set(TEST_IMAGES)


def test_settings_are_substituted_and_all_missing_ones_named_at_once():
    text = "a: ${GCS_BUCKET}\nb: ${DOMAIN}\nc: ${PROJECT_ID}\nd: $NOT_A_PLACEHOLDER\n"
    assert (
        render.substitute(text, {"GCS_BUCKET": "b", "DOMAIN": "d", "PROJECT_ID": "p"})
        == "a: b\nb: d\nc: p\nd: $NOT_A_PLACEHOLDER\n"
    )
    with pytest.raises(DeployError) as error:
        render.substitute(text, {"GCS_BUCKET": "b", "DOMAIN": ""})
    message = str(error.value)
    assert "DOMAIN" in message and "PROJECT_ID" in message and "GCS_BUCKET" not in message


def test_the_local_overlay_needs_no_settings(kubectl):
    objects = render.parse(render.render(os.fspath(KUSTOMIZE / "overlays" / "local"), TEST_IMAGES, {}, kubectl))
    assert len(objects) > 10


def test_the_gke_overlay_names_its_missing_settings(kubectl):
    with pytest.raises(DeployError, match="PROJECT_ID") as error:
        render.render(os.fspath(KUSTOMIZE / "overlays" / "gke"), TEST_IMAGES, {"DOMAIN": "x.example.com"}, kubectl)
    assert "DOMAIN" not in str(error.value)


def test_a_missing_kubectl_says_how_to_get_it(tmp_path):
    with pytest.raises(DeployError, match="make setup"):
        render.render(os.fspath(KUSTOMIZE / "overlays" / "local"), TEST_IMAGES, {}, os.fspath(tmp_path / "kubectl"))


def test_a_missing_overlay_is_named(tmp_path, kubectl):
    with pytest.raises(DeployError, match="no kustomization.yaml"):
        render.render(os.fspath(tmp_path / "prod"), TEST_IMAGES, {}, kubectl)


def test_a_broken_kustomization_shows_kustomize_error(tmp_path, kubectl):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(DeployError, match="kustomize failed") as error:
        render.render(os.fspath(tmp_path), TEST_IMAGES, {}, kubectl)
    assert "missing.yaml" in str(error.value)


def test_writes_are_atomic_and_loads_explain_problems(tmp_path):
    path = tmp_path / "deploy" / "local.yaml"
    render.write_atomically(os.fspath(path), "kind: A\nmetadata: {name: a}\n---\n")
    assert render.load_manifests(os.fspath(path)) == [{"kind": "A", "metadata": {"name": "a"}}]
    assert os.listdir(path.parent) == ["local.yaml"]  # no temporary file left behind
    with pytest.raises(DeployError, match="run 'make render' first"):
        render.load_manifests(os.fspath(tmp_path / "nothing.yaml"))
    (tmp_path / "empty.yaml").write_text("---\n")
    with pytest.raises(DeployError, match="holds no objects"):
        render.load_manifests(os.fspath(tmp_path / "empty.yaml"))
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(DeployError, match="not valid YAML"):
        render.load_manifests(os.fspath(tmp_path / "bad.yaml"))
