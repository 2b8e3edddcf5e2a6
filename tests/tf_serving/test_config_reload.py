"""--model_config_file and its re-reading: the stand-in follows TF Serving's own code, and each test
names the upstream function it follows (tensorflow/serving, read at commit 9d981c5c, 2026-07-30):

- tensorflow_serving/model_servers/server_core.cc, ServerCore::ReloadConfig: the new config is
  stored, then UpdateModelVersionLabelMap() checks the labels, and only then does
  AddModelsViaModelConfigList() hand the version policies to the file-system source.
- server_core.cc, ServerCore::UpdateModelVersionLabelMap: a label must name an AVAILABLE version,
  unless --allow_version_labels_for_unavailable_models, which lets a label that does not exist
  yet (or keeps its version) name any version, but never moves an existing one to an unavailable
  version.
- server_core.cc, ServerCore::Create: start-up is the first ReloadConfig, before anything loads.
- tensorflow_serving/model_servers/server.cc, Server::PollFilesystemAndReloadConfig: the file is
  parsed and handed to ReloadConfig at every poll; the log lines are its.
- tensorflow_serving/model_servers/main.cc, main: "Failed to start server. Error: <status>", -1.
- tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc,
  PollFileSystemForServable: a base path that does not exist is an error naming it, and the
  versions loaded keep serving.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from mnist_common.rollout import model_config
from tests.support.standin import standin_command
from tests.tf_serving.serving_harness import MODEL_NAME, free_port, publish, start_standin, wait_available

pytestmark = pytest.mark.slow

CONFIG_POLL_S = 0.3
WAIT_S = 30  # a config poll, plus loading a SavedModel on a busy 2-core machine
REFUSED = "PollFilesystemAndReloadConfig failed to ReloadConfig: "


def models_config(base_path, versions, labels) -> str:
    policy = " ".join(f"versions: {v}" for v in versions)
    label_lines = "".join(f'    version_labels {{ key: "{k}" value: {v} }}\n' for k, v in labels.items())
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{MODEL_NAME}"\n    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ {policy} }} }}\n{label_lines}  }}\n}}\n"
    )


def unavailable(version: int) -> str:
    return (
        f"Request to assign label to version {version} of model {MODEL_NAME}, "
        "which is not currently available for inference"
    )


def wait_for(condition, what: str, server, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"{what} not seen within {timeout} s; log:\n{server.log_text()[-3000:]}")


def label_version(server, label: str) -> int | None:
    response = requests.get(server.model_url(f"/labels/{label}"), timeout=5)
    if response.status_code != 200:
        return None
    return int(response.json()["model_version_status"][0]["version"])


def version_states(server) -> dict[int, str]:
    states = requests.get(server.model_url(), timeout=5).json()["model_version_status"]
    return {int(s["version"]): s["state"] for s in states}


def log_count(server, text: str) -> int:
    return server.log_text().count(text)


def start(tmp_path, exported_version, versions_on_disk, first_config, flags=()):
    base_path = tmp_path / "models" / MODEL_NAME
    base_path.mkdir(parents=True)
    for version in versions_on_disk:
        publish(base_path, version, exported_version)
    config_file = tmp_path / "models.config"
    config_file.write_text(first_config(base_path))
    server = start_standin(
        base_path,
        tmp_path / "standin.log",
        config_file,
        extra_flags=(f"--model_config_file_poll_wait_seconds={CONFIG_POLL_S}", *flags),
    )
    server.config_file = config_file
    return server


@pytest.fixture
def reloading(tmp_path, exported_version):
    """v1 and v2 on disk, v1 loaded and labelled stable; started as make serve and the cluster's
    Deployment start it (with --allow_version_labels_for_unavailable_models)."""
    server = start(tmp_path, exported_version, (1, 2), lambda base: models_config(base, [1], {"stable": 1}))
    yield server
    server.stop()


def rewrite(server, text: str) -> None:
    tmp = server.config_file.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(server.config_file)


def grpc_version_for_label(server, label: str) -> int:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.version_label = label
    tensor = request.inputs["images"]
    tensor.dtype = 1  # DT_FLOAT
    for size in (1, 28, 28):
        tensor.tensor_shape.dim.add().size = size
    tensor.tensor_content = np.zeros((1, 28, 28), "<f4").tobytes()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
    return stub.Predict(request, timeout=10).model_spec.version.value


def test_a_valid_change_is_applied_and_labels_route_requests(reloading):
    """ReloadConfig -> AddModelsViaModelConfigList: a version the policy adds loads; one it drops
    is unloaded once the others serve (AvailabilityPreservingPolicy)."""
    base = reloading.base_path
    rewrite(reloading, models_config(base, [1, 2], {"stable": 1}))
    wait_available(reloading, version=2, timeout=WAIT_S)
    rewrite(reloading, models_config(base, [1, 2], {"stable": 1, "canary": 2}))
    wait_for(lambda: label_version(reloading, "canary") == 2, "label canary -> 2", reloading)
    body = {"instances": np.zeros((1, 28, 28)).tolist()}
    answer = requests.post(reloading.model_url("/labels/canary:predict"), json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert grpc_version_for_label(reloading, "canary") == 2
    assert grpc_version_for_label(reloading, "stable") == 1
    rewrite(reloading, models_config(base, [2], {"stable": 2, "canary": 2}))
    wait_for(lambda: label_version(reloading, "stable") == 2, "label stable -> 2", reloading)
    wait_for(lambda: version_states(reloading).get(1) == "END", "version 1 unloaded", reloading)
    assert REFUSED not in reloading.log_text()


def test_a_file_that_does_not_parse_is_logged_and_the_old_config_keeps_serving(reloading):
    """server.cc, Server::PollFilesystemAndReloadConfig: "Failed to read ModelServerConfig file"."""
    before = log_count(reloading, "Failed to read ModelServerConfig file: ")
    rewrite(reloading, "model_config_list { config { name: ")
    wait_for(lambda: log_count(reloading, "Failed to read ModelServerConfig file: ") > before + 1, "2 polls", reloading)
    assert "not a valid ModelServerConfig" in reloading.log_text()
    assert label_version(reloading, "stable") == 1
    assert grpc_version_for_label(reloading, "stable") == 1


def test_an_existing_label_never_moves_to_an_unloaded_version_and_the_refusal_repeats(reloading):
    """UpdateModelVersionLabelMap, even with --allow_version_labels_for_unavailable_models: the
    existing label `stable` may not move to v2 while v2 is not AVAILABLE. ReloadConfig stored the
    config before the check and returned before AddModelsViaModelConfigList, so v2 is never
    loaded, and every later poll of the same file is refused again."""
    base = reloading.base_path
    rewrite(reloading, models_config(base, [1, 2], {"stable": 2}))  # today's one-write promote
    wait_for(lambda: log_count(reloading, REFUSED + unavailable(2)) >= 3, "three refused polls", reloading)
    assert version_states(reloading) == {1: "AVAILABLE"}  # v2 was never asked for
    assert label_version(reloading, "stable") == 1 and grpc_version_for_label(reloading, "stable") == 1
    # Phased: the version first (labels unchanged), then the label once v2 is AVAILABLE.
    rewrite(reloading, models_config(base, [1, 2], {"stable": 1}))
    wait_available(reloading, version=2, timeout=WAIT_S)
    refusals = log_count(reloading, REFUSED)
    rewrite(reloading, models_config(base, [1, 2], {"stable": 2}))
    wait_for(lambda: label_version(reloading, "stable") == 2, "label stable -> 2", reloading)
    time.sleep(3 * CONFIG_POLL_S)  # three more polls of the applied config: no refusal among them
    assert log_count(reloading, REFUSED) == refusals


def test_with_the_flag_a_new_label_may_name_a_version_that_is_not_loaded_yet(reloading):
    """UpdateModelVersionLabelMap's allow branch: `canary` does not exist yet, so it may name v2
    before v2 loads; AddModelsViaModelConfigList then loads v2."""
    rewrite(reloading, models_config(reloading.base_path, [1, 2], {"stable": 1, "canary": 2}))
    wait_available(reloading, version=2, timeout=WAIT_S)
    wait_for(lambda: label_version(reloading, "canary") == 2, "label canary -> 2", reloading)
    assert grpc_version_for_label(reloading, "canary") == 2
    assert REFUSED not in reloading.log_text()


def test_a_label_on_a_version_the_same_file_unloads_is_applied_as_tf_serving_applies_it(reloading):
    """models.config labels v1 but its policy keeps only v2. ReloadConfig checks the label while
    v1 is still AVAILABLE, so TF Serving accepts it; AddModelsViaModelConfigList then unloads v1
    and the label answers NOT_FOUND. The stand-in does the same; the project never writes such
    a file (mnist_common.rollout.model_config refuses to render one)."""
    rewrite(reloading, models_config(reloading.base_path, [2], {"stable": 1}))
    wait_for(lambda: version_states(reloading).get(1) == "END", "version 1 unloaded", reloading)
    body = {"instances": np.zeros((1, 28, 28)).tolist()}
    answer = requests.post(reloading.model_url("/labels/stable:predict"), json=body, timeout=10)
    assert answer.status_code == 404 and f"Specific({MODEL_NAME}, 1)" in answer.json()["error"]
    with pytest.raises(ValueError, match="stable names v1, which the config does not load"):
        model_config.ServerConfig((2,), (("stable", 1),))


def test_a_base_path_that_does_not_exist_is_logged_by_name_and_the_loaded_versions_keep_serving(reloading):
    """ReloadConfig does not look at the base path; the file-system source's next poll fails with
    "Could not find base path <path> for servable <name>" (PollFileSystemForServable), logged by
    PollFileSystemAndInvokeCallback, and nothing is unloaded."""
    missing = reloading.base_path.parent / "no-such-folder"
    rewrite(reloading, models_config(missing, [1], {"stable": 1}))
    line = f"Could not find base path {missing} for servable {MODEL_NAME}"
    wait_for(lambda: line in reloading.log_text(), "the missing base path named in the log", reloading)
    assert "FileSystemStoragePathSource encountered a filesystem access error" in reloading.log_text()
    assert version_states(reloading) == {1: "AVAILABLE"}
    assert grpc_version_for_label(reloading, "stable") == 1


def run_standin(config_file, *flags) -> subprocess.CompletedProcess:
    command = standin_command(grpc_port=free_port(), rest_port=free_port(), config_file=config_file, batching=False)
    command = [arg for arg in command if arg != "--allow_version_labels_for_unavailable_models"]
    return subprocess.run([*command, *flags], capture_output=True, text=True, timeout=120)


def test_start_up_with_labels_exits_without_the_flag_as_tf_serving_does(tmp_path, exported_version):
    """ServerCore::Create is the first ReloadConfig: UpdateModelVersionLabelMap runs before
    anything is loaded, so even a label on v1, which would load, is refused; main.cc prints
    "Failed to start server. Error: <status>" and returns -1 (exit status 255)."""
    base_path = tmp_path / "models" / MODEL_NAME
    base_path.mkdir(parents=True)
    publish(base_path, 1, exported_version)
    config_file = tmp_path / "models.config"
    config_file.write_text(models_config(base_path, [1], {"stable": 1}))
    result = run_standin(config_file)
    assert result.returncode == 255, result.stderr[-2000:]
    assert f"Failed to start server. Error: FAILED_PRECONDITION: {unavailable(1)}" in result.stderr


def test_without_the_flag_labels_come_only_after_their_versions_load(tmp_path, exported_version):
    """Without --allow_version_labels_for_unavailable_models: an unlabelled config starts, a label
    on the AVAILABLE v1 is then accepted, and a new label on the unloaded v2 is refused (the flag's
    one difference: new labels)."""
    server = start(
        tmp_path,
        exported_version,
        (1, 2),
        lambda base: models_config(base, [1], {}),
        flags=("--allow_version_labels_for_unavailable_models=false",),
    )
    try:
        rewrite(server, models_config(server.base_path, [1], {"stable": 1}))
        wait_for(lambda: label_version(server, "stable") == 1, "label stable -> 1", server)
        rewrite(server, models_config(server.base_path, [1, 2], {"stable": 1, "canary": 2}))
        wait_for(lambda: log_count(server, REFUSED + unavailable(2)) >= 2, "two refused polls", server)
        assert version_states(server) == {1: "AVAILABLE"} and label_version(server, "canary") is None
    finally:
        server.stop()
