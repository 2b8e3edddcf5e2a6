"""make images, make push and make kind-load against the real engine: what each image records and
carries, a push to a registry on loopback (Debian's docker-registry), and a broken Dockerfile
failing make images with the image's name."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest
import requests

from mnist_deploy.content_tags import IMAGES
from mnist_run.ports import free_port
from tests.containers.conftest import docker, make_images
from tests.support.make import make
from tests.support.paths import REPO_ROOT
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

# The web UI ships without TensorFlow (services/web-ui/Dockerfile).
WEB_UI_MAX_BYTES = 400 * 10**6


def inspect(ref: str) -> dict:
    return json.loads(docker("image", "inspect", ref).stdout)[0]


def test_each_image_records_its_commit_and_content_tag(built_images, image_tags):
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    for name, ref in built_images.items():
        labels = inspect(ref)["Config"]["Labels"]
        assert labels["org.opencontainers.image.revision"] == commit, name
        assert labels["org.opencontainers.image.version"] == image_tags[name], name
        assert labels["org.opencontainers.image.title"] == name


def test_the_images_run_as_10001_and_carry_no_compilers_or_pip_caches(built_images):
    for name, ref in built_images.items():
        assert inspect(ref)["Config"]["User"] == "10001:10001", name
        found = docker(
            "run", "--rm", "--entrypoint", "sh", ref, "-c",
            "command -v gcc cc g++ make; ls -d /root/.cache /tmp/.cache /src 2>/dev/null; true",
        ).stdout.split()  # fmt: skip
        assert found == [], f"{name} carries {found}"


def test_the_web_ui_image_is_small_and_has_no_tensorflow(built_images):
    ref = built_images["mnist-web-ui"]
    size = inspect(ref)["Size"]
    assert size < WEB_UI_MAX_BYTES, f"mnist-web-ui is {size / 1e6:.0f} MB (limit {WEB_UI_MAX_BYTES / 1e6:.0f} MB)"
    probe = docker("run", "--rm", ref, "python", "-c", "import tensorflow", check=False)
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr


@pytest.fixture
def loopback_registry(tmp_path):
    """Debian's docker-registry on a free loopback port (the engine pushes to 127.0.0.0/8 over
    plain HTTP without being told)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        message = "Debian's docker-registry is not installed (apt-get install docker-registry)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message}; .ci/run installs it")
        pytest.skip(message)
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(tmp_path / "registry.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen([binary, "serve", os.fspath(config)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: requests.get(f"{url}/v2/", timeout=2).status_code == 200,
            timeout=30,
            what="docker-registry on loopback",
            process=process,
            log_tail=lambda: (tmp_path / "registry.log").read_text()[-2000:],
            ignore=(requests.ConnectionError,),
        )
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_make_push_puts_the_image_in_the_registry(engine, python_image, built_images, image_tags, loopback_registry):
    """The web UI alone (IMAGE_NAMES): pushing the two TensorFlow images too would add about 4 GB
    of gzip to every run; the loop over all three is tested in tests/deploy/test_image_targets.py."""
    registry = f"{loopback_registry}/mnist"
    name = "mnist-web-ui"
    ref = f"{registry}/{name}:{image_tags[name]}"
    try:
        built = make_images(engine, python_image, f"REGISTRY={registry}", f"IMAGE_NAMES={name}")  # cached: a new name
        assert built.returncode == 0, built.stderr
        pushed = make(
            "push",
            f"DOCKER={engine}",
            f"REGISTRY={registry}",
            f"IMAGE_NAMES={name}",
            unset=("IMAGE_TAG",),
            timeout=1200,
        )
        assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr
        tags = requests.get(f"http://{loopback_registry}/v2/mnist/{name}/tags/list", timeout=10).json()["tags"]
        assert tags == [image_tags[name]]
        accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
        manifest = requests.get(
            f"http://{loopback_registry}/v2/mnist/{name}/manifests/{image_tags[name]}", headers=accept, timeout=10
        ).json()
        # What the registry holds is the very image make images built.
        assert manifest["config"]["digest"] == inspect(built_images[name])["Id"]
    finally:
        docker("image", "rm", ref, check=False)  # the extra name only; the image stays


def test_make_kind_load_hands_kind_each_built_image(engine, built_images, tmp_path):
    """kind itself needs a cluster; this `kind` checks that each reference it is given names an
    image in the engine, as `kind load docker-image` (docker save) would need."""
    log = tmp_path / "kind.log"
    kind = tmp_path / "kind"
    kind.write_text(
        f'#!/bin/bash\necho "$*" >> {log}\nexec {engine} image inspect --format "{{{{.Id}}}}" "${{@: -1}}"\n'
    )
    kind.chmod(kind.stat().st_mode | stat.S_IEXEC)
    result = make("kind-load", f"KIND={kind}", "KIND_CLUSTER=test", unset=("IMAGE_TAG",))
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [f"load docker-image --name test {ref}" for ref in built_images.values()]
    assert sorted(result.stdout.split()) == sorted(inspect(ref)["Id"] for ref in built_images.values())


def test_a_broken_dockerfile_fails_make_images_naming_the_image(engine, python_image, built_images, tmp_path):
    """The repository copied, the web UI's Dockerfile broken (a COPY of a path that is not
    there): make images stops with the web UI's name (the other two come from the cache)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    copy = tmp_path / "repo"
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    dockerfile = copy / "services" / "web-ui" / "Dockerfile"
    text = dockerfile.read_text()
    dockerfile.write_text(
        text.replace(
            "COPY libs/mnist_common", "COPY libs/no_such_library libs/no_such_library\nCOPY libs/mnist_common", 1
        )
    )
    tag = "broken-dockerfile-test"
    try:
        result = make_images(engine, python_image, f"IMAGE_TAG={tag}", "GIT_COMMIT=test", cwd=copy)
        assert result.returncode != 0
        assert "error: the image mnist-web-ui did not build (services/web-ui/Dockerfile" in result.stderr, result.stderr
    finally:
        for name in IMAGES:
            docker("image", "rm", f"mnist.local/{name}:{tag}", check=False)
