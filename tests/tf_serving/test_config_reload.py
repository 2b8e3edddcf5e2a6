"""--model_config_file_poll_wait_seconds: the stand-in re-reads its model config while serving and,
as TF Serving, applies a valid change, refuses an invalid one (the old config keeps serving, a log
line says why) and refuses a label that names a version which is not loaded."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.support.paths import SERVING_CONFIG_DIR as CONFIG_DIR
from tests.tf_serving.serving_harness import MODEL_NAME, free_port, publish, start_standin, wait_available

pytestmark = pytest.mark.slow

CONFIG_POLL_S = 0.3
WAIT_S = 30  # a config poll, plus loading a SavedModel on a busy 2-core machine


def models_config(base_path, versions, labels) -> str:
    policy = " ".join(f"versions: {v}" for v in versions)
    label_lines = "".join(f'    version_labels {{ key: "{k}" value: {v} }}\n' for k, v in labels.items())
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{MODEL_NAME}"\n    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ {policy} }} }}\n{label_lines}  }}\n}}\n"
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


def log_count(server, text: str) -> int:
    return server.log_text().count(text)


@pytest.fixture
def reloading(tmp_path, exported_version):
    base_path = tmp_path / "models" / MODEL_NAME
    base_path.mkdir(parents=True)
    publish(base_path, 1, exported_version)
    publish(base_path, 2, exported_version)
    config_file = tmp_path / "models.config"
    config_file.write_text(models_config(base_path, [1], {"stable": 1}))
    server = start_standin(
        base_path,
        tmp_path / "standin.log",
        config_file,
        extra_flags=(f"--model_config_file_poll_wait_seconds={CONFIG_POLL_S}",),
    )
    server.config_file = config_file
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
    # Dropping a version from the policy unloads it.
    rewrite(reloading, models_config(base, [2], {"stable": 2, "canary": 2}))
    wait_for(lambda: label_version(reloading, "stable") == 2, "label stable -> 2", reloading)
    wait_for(
        lambda: (
            requests.get(reloading.model_url("/versions/1"), timeout=5).json()["model_version_status"][0]["state"]
            == "END"
        ),
        "version 1 unloaded",
        reloading,
    )


def test_an_invalid_file_is_refused_and_the_old_config_keeps_serving(reloading):
    before = log_count(reloading, "Refused the new model config")
    rewrite(reloading, "model_config_list { config { name: ")
    wait_for(lambda: log_count(reloading, "Refused the new model config") > before, "a refusal", reloading)
    assert "not a valid ModelServerConfig" in reloading.log_text()
    assert label_version(reloading, "stable") == 1
    assert grpc_version_for_label(reloading, "stable") == 1


def test_a_label_naming_a_version_that_is_not_loaded_is_refused(reloading):
    base = reloading.base_path
    # Version 2 is on disk but not in the policy, so not loaded: TF Serving refuses the label,
    # and with it the whole change (so 2 is not loaded either).
    rewrite(reloading, models_config(base, [1, 2], {"stable": 1, "canary": 2}))
    message = f"Request to assign label to version 2 of model {MODEL_NAME}, which is not currently available"
    wait_for(lambda: message in reloading.log_text(), "the refusal of a label on an unloaded version", reloading)
    assert label_version(reloading, "canary") is None
    states = requests.get(reloading.model_url(), timeout=5).json()["model_version_status"]
    assert {int(s["version"]) for s in states} == {1}
    assert grpc_version_for_label(reloading, "stable") == 1


def test_start_up_fails_when_a_label_names_a_version_that_does_not_load(tmp_path, exported_version):
    base_path = tmp_path / "models" / MODEL_NAME
    base_path.mkdir(parents=True)
    publish(base_path, 1, exported_version)
    config_file = tmp_path / "models.config"
    config_file.write_text(models_config(base_path, [1], {"stable": 1, "canary": 5}))
    command = [
        sys.executable,
        "-m",
        "tfserving_standin.cli",
        f"--port={free_port()}",
        f"--rest_api_port={free_port()}",
        "--host=127.0.0.1",
        f"--model_config_file={config_file}",
        f"--monitoring_config_file={CONFIG_DIR / 'monitoring.config'}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Failed to start server" in result.stderr
    assert "version 5 of model mnist, which is not currently available for inference" in result.stderr
