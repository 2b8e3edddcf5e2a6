"""Deploy settings can live in one git-ignored file (deploy.env) that every deploy target reads,
so `make undeploy` renders with the same DOMAIN as `make deploy` without repeating it."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.make import make
from tests.support.paths import REPO_ROOT

UNSET = ("PROJECT_ID", "REGISTRY", "DOMAIN", "OVERLAY", "IMAGE_TAG", "GCS_BUCKET", "DEPLOY_ENV", "REGION")


@pytest.fixture
def deploy_env(tmp_path):
    path = tmp_path / "deploy.env"
    path.write_text("PROJECT_ID=demo-project\nDOMAIN=mnist.example.com\nOVERLAY=gke\n")
    return path


@pytest.mark.parametrize("target", ["render", "deploy", "status", "undeploy"])
def test_every_deploy_target_renders_with_the_file_settings(deploy_env, tmp_path, target):
    result = make("-n", target, f"DEPLOY_ENV={deploy_env}", "IMAGE_TAG=abc", f"ARTIFACTS={tmp_path}", unset=UNSET)
    assert result.returncode == 0, result.stderr
    assert "--set DOMAIN=mnist.example.com" in result.stdout
    assert "--set PROJECT_ID=demo-project" in result.stdout
    assert "--set GCS_BUCKET=demo-project-mnist" in result.stdout  # defaults still derive from the file
    assert "kustomize/overlays/gke" in result.stdout


def test_the_command_line_wins_over_the_file(deploy_env, tmp_path):
    result = make(
        "-n",
        "render",
        f"DEPLOY_ENV={deploy_env}",
        "DOMAIN=other.example.com",
        "IMAGE_TAG=abc",
        f"ARTIFACTS={tmp_path}",
        unset=UNSET,
    )
    assert "--set DOMAIN=other.example.com" in result.stdout


def test_gke_targets_read_the_file_too(deploy_env):
    result = make("-p", "-n", "image-tag", f"DEPLOY_ENV={deploy_env}", unset=UNSET)
    assert "PROJECT_ID = demo-project" in result.stdout
    assert "REGISTRY = $(if $(PROJECT_ID)" in result.stdout


def test_deploy_env_is_git_ignored_and_the_example_is_committed():
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy.env"], cwd=REPO_ROOT, timeout=30)
    assert ignored.returncode == 0
    example = (REPO_ROOT / "deploy.env.example").read_text()
    assert "PROJECT_ID=" in example and "DOMAIN=" in example


def test_without_the_file_nothing_changes(tmp_path):
    result = make(
        "-n", "render", f"DEPLOY_ENV={tmp_path}/absent.env", "IMAGE_TAG=abc", f"ARTIFACTS={tmp_path}", unset=UNSET
    )
    assert result.returncode == 0 and "kustomize/overlays/local" in result.stdout
