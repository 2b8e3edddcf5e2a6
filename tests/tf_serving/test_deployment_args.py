"""The cluster's TF Serving container, as rendered, started here on a labelled models.config: the
first `make deploy` writes the rollout's stable/canary labels before TF Serving starts, and every
later pod start (scale-up, node drain) reads them too. TF Serving checks labels before it loads
anything (tensorflow_serving/model_servers/server_core.cc, ServerCore::Create ->
ServerCore::ReloadConfig -> UpdateModelVersionLabelMap), so the container starts only with
--allow_version_labels_for_unavailable_models; the stand-in follows that code, so the rendered
args are checked by starting it with them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from mnist_common.rollout import configmap
from mnist_common.rollout.state import RolloutState
from mnist_deploy import render
from tests.deploy.renders import KUBECTL, KUSTOMIZE, TEST_IMAGES, TEST_SETTINGS, find
from tests.support.paths import SERVING_CONFIG_DIR
from tests.tf_serving.serving_harness import MODEL_NAME, ServerUnderTest, free_port, publish, wait_available

pytestmark = pytest.mark.slow

ALLOW = "--allow_version_labels_for_unavailable_models"
# Transport tuning TF Serving has and the stand-in does not model (gRPC connection ageing).
NOT_MODELLED = ("--grpc_channel_arguments=",)


def rendered_container(overlay: str) -> dict:
    objects = render.parse(render.render(os.fspath(KUSTOMIZE / overlay), TEST_IMAGES, TEST_SETTINGS, str(KUBECTL)))
    return find(objects, "Deployment", "tf-serving")["spec"]["template"]["spec"]["containers"][0]


def local_args(container: dict, config_file, grpc_port: int, rest_port: int) -> list[str]:
    """The container's args with its paths and ports mapped onto this machine."""
    assert container["command"] == ["tensorflow_model_server"]
    mapped = []
    for arg in container["args"]:
        name, _, value = arg.partition("=")
        if arg.startswith(NOT_MODELLED):
            continue
        if name == "--port":
            arg = f"--port={grpc_port}"
        elif name == "--rest_api_port":
            arg = f"--rest_api_port={rest_port}"
        elif name == "--model_config_file":
            arg = f"--model_config_file={config_file}"
        elif value.startswith("/etc/tf-serving/"):
            arg = f"{name}={SERVING_CONFIG_DIR / value.removeprefix('/etc/tf-serving/')}"
        mapped.append(arg)
    return [*mapped, "--host=127.0.0.1"]


@pytest.mark.parametrize("overlay", ["overlays/gke", "overlays/local"])
def test_the_rendered_tf_serving_args_start_on_the_rollouts_labelled_config(overlay, tmp_path, exported_version):
    container = rendered_container(overlay)
    assert f"{ALLOW}=true" in container["args"] or ALLOW in container["args"]
    base_path = tmp_path / "models" / MODEL_NAME
    base_path.mkdir(parents=True)
    for version in (1, 2):
        publish(base_path, version, exported_version)
    # What the export stage leaves in the ConfigMap after publishing v2: stable v1, canary v2.
    state = RolloutState(stable=1, canary=2, canary_percent=10)
    data = configmap.manifest(state, [1, 2], "mnist", base_path=str(base_path))["data"]
    config_file = tmp_path / configmap.MODELS_CONFIG
    config_file.write_text(data[configmap.MODELS_CONFIG])

    command = [sys.executable, "-m", "tfserving_standin.cli"]
    # Without the flag, as the Deployment was before: the container would exit and crash-loop.
    without = [a for a in local_args(container, config_file, free_port(), free_port()) if not a.startswith(ALLOW)]
    refused = subprocess.run([*command, *without], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 255 and "Failed to start server. Error: FAILED_PRECONDITION" in refused.stderr

    grpc_port, rest_port = free_port(), free_port()
    log_path = tmp_path / "standin.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, *local_args(container, config_file, grpc_port, rest_port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
    server = ServerUnderTest(
        f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", base_path, True, process, log_path
    )
    try:
        wait_available(server, version=2)
        for label, version in (("stable", 1), ("canary", 2)):
            answer = requests.post(
                server.model_url(f"/labels/{label}:predict"), json={"instances": [[[0.0] * 28] * 28]}, timeout=10
            )
            assert answer.status_code == 200, answer.text
            status = requests.get(server.model_url(f"/labels/{label}"), timeout=5).json()
            assert int(status["model_version_status"][0]["version"]) == version
    finally:
        server.stop()
