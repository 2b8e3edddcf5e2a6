"""The pipeline compiled once per session by the Kubeflow Pipelines SDK's own venv (make kfp-setup;
make test and make test-pipeline create it), into a temporary folder, with images and defaults the
tests choose."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from tests.support.paths import REPO_ROOT

KFP_PYTHON = pathlib.Path(os.environ.get("KFP_PYTHON", REPO_ROOT / "artifacts" / "kfp" / "venv" / "bin" / "python"))
SOURCES = ["tools/mnist_kfp/src", "services/trainer/src", "libs/mnist_common/src"]
IMAGES = {
    "mnist-trainer": "registry.test/mnist-trainer:c-trainer1",
    "mnist-model-exporter": "registry.test/mnist-model-exporter:c-export1",
}
MAKE_DEFAULTS = {
    "DATA_SOURCE": "mnist",
    "MODEL_NAME": "mnist",
    "MIN_ACCURACY": "0.97",
    "MAX_REGRESSION": "0.005",
    "KEEP_VERSIONS": "3",
    "CANARY_PERCENT": "10",
}

# The pipeline's own pure modules (no SDK needed), for the tests to compare the IR with.
sys.path.insert(0, os.fspath(REPO_ROOT / "tools" / "mnist_kfp" / "src"))


def kfp_module(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m mnist_kfp ARGS` in the SDK's venv, as make runs it."""
    if not KFP_PYTHON.exists():
        pytest.fail(f"{KFP_PYTHON} is missing: run 'make kfp-setup' (make test does)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(os.fspath(REPO_ROOT / path) for path in SOURCES)}
    return subprocess.run(
        [os.fspath(KFP_PYTHON), "-m", "mnist_kfp", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def compile_args(out, images=IMAGES, defaults=MAKE_DEFAULTS) -> list[str]:
    args = ["compile", "--out", os.fspath(out)]
    args += [arg for name, ref in images.items() for arg in ("--image", f"{name}={ref}")]
    args += [arg for name, value in defaults.items() for arg in ("--default", f"{name}={value}")]
    return args


@pytest.fixture(scope="session")
def compiled_documents(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("pipeline") / "mnist.yaml"
    done = kfp_module(*compile_args(out))
    assert done.returncode == 0, done.stderr
    return list(yaml.safe_load_all(out.read_text()))


@pytest.fixture(scope="session")
def compiled(compiled_documents) -> dict:
    """The PipelineSpec (the IR's first document)."""
    return compiled_documents[0]


@pytest.fixture(scope="session")
def platform(compiled_documents) -> dict:
    """The Kubernetes PlatformSpec (the IR's second document; kfp-kubernetes writes it)."""
    return compiled_documents[1]["platforms"]["kubernetes"]
