"""The manual `gcloud builds submit` documented in .ci/cloudbuild.yaml, run as written from a
checkout against a stand-in gcloud (tests/deploy/gcloud_builds_standin.py): what it uploads, and
whether Cloud Build's image-tag step, which needs git, then computes the images' tags.

gcloud's default ignore rules (no .gcloudignore) leave .git out of the upload; the step then has
no git work tree. The repository's .gcloudignore keeps .git in and what .gitignore leaves out."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.deploy.renders import REPO_ROOT

CONFIG = REPO_ROOT / ".ci" / "cloudbuild.yaml"
STANDIN = REPO_ROOT / "tests" / "deploy" / "gcloud_builds_standin.py"


def documented_command() -> str:
    """The `gcloud builds submit` of the config's header, continuation lines joined."""
    header = CONFIG.read_text().split("\nsubstitutions:", 1)[0]
    lines = [line[1:].strip() for line in header.splitlines() if line.startswith("#")]
    start = next(i for i, line in enumerate(lines) if line.startswith("gcloud builds submit"))
    command = ""
    for line in lines[start:]:
        command += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            break
    return command.strip()


@pytest.fixture
def checkout(tmp_path) -> str:
    """A checkout of this working tree: its tracked files committed in a new repository, plus
    what a developer's checkout has that git ignores (a venv, artifacts, deploy.env)."""
    root = tmp_path / "checkout"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    for path in filter(None, tracked.decode().split("\0")):
        source = REPO_ROOT / path
        if source.is_file():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / path)
    env = git_env(tmp_path)
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "checkout"]):
        subprocess.run(command, cwd=root, env=env, check=True)
    for ignored, text in (
        (".venv/pyvenv.cfg", "home = /usr/bin\n"),
        ("artifacts/data/mnist/train.idx", "x"),
        ("deploy.env", "PROJECT_ID=local-only\n"),
    ):
        (root / ignored).parent.mkdir(parents=True, exist_ok=True)
        (root / ignored).write_text(text)
    return os.fspath(root)


def git_env(tmp_path) -> dict:
    # The step sets safe.directory in the global git config: keep that out of the real one.
    return {
        **os.environ,
        "HOME": os.fspath(tmp_path),
        "GIT_CONFIG_GLOBAL": os.fspath(tmp_path / "gitconfig"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }


def submit(checkout: str, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "gcloud"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    wrapper.chmod(0o755)
    workspace = tmp_path / "workspace"
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir()
    env = {**git_env(tmp_path), "PATH": f"{bin_dir}:{os.environ['PATH']}", "STANDIN_WORKSPACE": os.fspath(workspace)}
    result = subprocess.run(
        ["bash", "-c", documented_command()], cwd=checkout, env=env, capture_output=True, text=True, timeout=120
    )
    uploaded = (
        set((workspace / ".standin-uploaded").read_text().splitlines())
        if (workspace / ".standin-uploaded").exists()
        else set()
    )
    return result, workspace, uploaded


def test_the_documented_command_is_a_builds_submit_of_the_config():
    command = documented_command()
    assert command.startswith("gcloud builds submit --config .ci/cloudbuild.yaml")
    assert command.endswith(" .")


def test_the_documented_submit_uploads_git_and_the_step_tags_the_images(checkout, tmp_path):
    result, workspace, uploaded = submit(checkout, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(path.startswith(".git/") for path in uploaded)
    # What .gitignore leaves out stays out.
    assert not any(path.startswith((".venv/", "artifacts/")) or path == "deploy.env" for path in uploaded)
    tags = (workspace / "artifacts" / "cloudbuild" / "image-tags").read_text().split()
    expected = subprocess.run(
        ["make", "-s", "--no-print-directory", "image-tags"],
        cwd=checkout,
        env=git_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tags == expected
    assert [tag.split("=")[0] for tag in tags] == ["mnist-trainer", "mnist-model-exporter", "mnist-web-ui"]
    assert all(re.fullmatch(r"c-[0-9a-f]{12}", tag.split("=")[1]) for tag in tags)


def test_with_gclouds_default_rules_the_step_has_no_git(checkout, tmp_path):
    os.remove(os.path.join(checkout, ".gcloudignore"))
    result, _, uploaded = submit(checkout, tmp_path)
    assert not any(path.startswith(".git/") for path in uploaded)
    assert result.returncode != 0
    assert "not inside a git work tree" in result.stderr + result.stdout
