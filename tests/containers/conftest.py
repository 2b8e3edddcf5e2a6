"""The container tests' engine and images: `make images` on the real Docker engine, once a session.

Without an engine (no docker CLI, or no daemon it can reach) these tests are skipped, saying why;
under CI=true that is an error instead (.ci/run starts dockerd, so the images must be tested there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from mnist_deploy.content_tags import IMAGES
from tests.support.make import make
from tests.support.paths import REPO_ROOT

# As make's DOCKER default: Debian's docker.io CLI where it is installed (it builds with BuildKit
# without the buildx plugin), else the docker on PATH.
DOCKER = os.environ.get("DOCKER") or ("/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker")
# make base-image's BASE_IMAGE: the Python base made from Debian packages where no registry answers.
BASE_IMAGE = "mnist-python-base:3.11-bookworm"
LOCAL_REGISTRY = "mnist.local"
# Cold image builds download TensorFlow: far beyond the suite's per-test timeout.
BUILD_TIMEOUT = 2400


def docker(*args: str, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} ... failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def engine_problem() -> str | None:
    if shutil.which(DOCKER) is None:
        return f"no docker CLI '{DOCKER}' (Debian: apt-get install docker.io)"
    try:
        info = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return f"'{DOCKER} info' did not answer in 30 s"
    if info.returncode != 0:
        return f"'{DOCKER}' cannot reach a Docker engine ({info.stderr.strip()[:200]}); start dockerd"
    return None


@pytest.fixture(scope="session")
def engine() -> str:
    problem = engine_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: the container tests must run, but {problem} (.ci/run starts dockerd)")
        pytest.skip(f"container tests skipped: {problem}")
    return DOCKER


@pytest.fixture(scope="session")
def python_image(engine) -> str | None:
    """PYTHON_IMAGE from the environment; else the base made by `make base-image` when it is here
    (hosts without a registry); else None: the Dockerfiles' own pinned python:3.11-slim."""
    if os.environ.get("PYTHON_IMAGE"):
        return os.environ["PYTHON_IMAGE"]
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE
    return None


def make_images(engine: str, python_image: str | None, *extra: str, cwd=None) -> subprocess.CompletedProcess:
    args = ["images", f"DOCKER={engine}", *extra]
    if python_image:
        args.append(f"PYTHON_IMAGE={python_image}")
    kwargs = {"cwd": cwd} if cwd else {}
    return make(*args, unset=("IMAGE_TAG", "REGISTRY", "PROJECT_ID"), timeout=BUILD_TIMEOUT, **kwargs)


@pytest.fixture(scope="session")
def image_tags() -> dict[str, str]:
    result = make("image-tags", unset=("IMAGE_TAG",))
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.split())


@pytest.fixture(scope="session")
def built_images(engine, python_image, image_tags) -> dict[str, str]:
    """{image name: local reference} of the three images, built by `make images` (BuildKit's cache
    makes a second session's build a matter of seconds)."""
    result = make_images(engine, python_image)
    if result.returncode != 0:
        pytest.fail(f"make images failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    refs = {name: f"{LOCAL_REGISTRY}/{name}:{image_tags[name]}" for name in IMAGES}
    for ref in refs.values():
        docker("image", "inspect", ref)
    return refs


@pytest.fixture(scope="session")
def run_id(engine) -> str:
    """A prefix for the containers and networks of this session, removed at its end."""
    prefix = f"mnist-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    for kind, listing in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"])):
        ids = docker(*listing, "--filter", f"name={prefix}", check=False).stdout.split()
        if ids:
            docker(*([kind, "rm", "-f"] if kind == "container" else ["network", "rm"]), *ids, check=False)


@pytest.fixture(scope="session")
def standin_image(engine, built_images) -> str:
    """The TF Serving stand-in as `tensorflow_model_server` on the exporter image (the real
    tensorflow/serving image cannot be pulled here): tests/containers/tf-serving-standin.Dockerfile."""
    exporter = built_images["mnist-model-exporter"]
    tag = f"mnist-test/tf-serving-standin:{exporter.rsplit(':', 1)[1]}"
    docker(
        "build",
        "--build-arg",
        f"EXPORTER_IMAGE={exporter}",
        "-f",
        "tests/containers/tf-serving-standin.Dockerfile",
        "-t",
        tag,
        ".",
        cwd=REPO_ROOT,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        timeout=900,
    )
    return tag
