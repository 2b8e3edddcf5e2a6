"""Version lifecycle: publishing under load, a version that fails to load, warmup replay.

These write into the server's base path: the stand-in's, or with SERVING_REST_URL set, the one
SERVING_MODEL_BASE_PATH names.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from tests.support.waiting import wait_for
from tests.tf_serving.serving_harness import wait_available
from tests.tf_serving.serving_wire import GrpcApi, tensor_proto

pytestmark = pytest.mark.slow

POLL_SECONDS = 1  # the stand-in fixture's --file_system_poll_wait_seconds
SWITCH_BUDGET_S = 15  # one poll plus loading and warming up a SavedModel on a busy 2-core machine


@pytest.fixture(scope="module")
def lifecycle(server):
    """The session's server: the stand-in writes into its own base path; an external server
    needs SERVING_MODEL_BASE_PATH. These tests run last (file order) and find the versions they
    build on from the status API, so they hold on any state the server is in."""
    if server.base_path is None:
        base = os.environ.get("SERVING_MODEL_BASE_PATH")
        if not base:
            pytest.skip("publishing versions needs SERVING_MODEL_BASE_PATH, the external server's base path")
        server.base_path = pathlib.Path(base)
    return server


@pytest.fixture(scope="module")
def digit(data_dir):
    from mnist_common.dataset import load_split

    return load_split(data_dir, "test").as_float()[:1]


def states(server) -> dict[int, dict]:
    body = requests.get(server.model_url(), timeout=10).json()
    return {int(entry["version"]): entry for entry in body["model_version_status"]}


def latest_available(server) -> int:
    return max(v for v, entry in states(server).items() if entry["state"] == "AVAILABLE")


class Traffic:
    """Steady REST and gRPC predict traffic from a few threads, recording every failure."""

    def __init__(self, server, digit):
        self.server, self.digit = server, digit
        self.failures: list[str] = []
        self.grpc_versions: list[tuple[float, int]] = []
        self.count = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._rest, daemon=True) for _ in range(2)]
        self._threads += [threading.Thread(target=self._grpc, daemon=True) for _ in range(2)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _rest(self):
        body = {"instances": self.digit.tolist()}
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    response = session.post(self.server.model_url(":predict"), json=body, timeout=30)
                    if response.status_code != 200:
                        self.failures.append(f"REST {response.status_code}: {response.text[:200]}")
                except requests.RequestException as error:
                    self.failures.append(f"REST {error}")
                self.count += 1

    def _grpc(self):
        stub = GrpcApi(self.server).prediction
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist"
        request.inputs["images"].CopyFrom(tensor_proto(self.digit))
        while not self._stop.is_set():
            try:
                response = stub.Predict(request, timeout=30)
                self.grpc_versions.append((time.monotonic(), response.model_spec.version.value))
            except grpc.RpcError as error:
                self.failures.append(f"gRPC {error.code().name}: {error.details()}")
            self.count += 1


def test_publishing_a_version_switches_with_zero_failed_requests(lifecycle, digit, exported_version):
    old = latest_available(lifecycle)
    new = old + 1
    with Traffic(lifecycle, digit) as traffic:
        # A version still being staged in a hidden folder is not a version.
        staging = lifecycle.base_path / f".staging-{new}"
        shutil.copytree(exported_version, staging)
        time.sleep(POLL_SECONDS * 2.5)
        assert new not in states(lifecycle)
        published_at = time.monotonic()
        os.rename(staging, lifecycle.base_path / str(new))
        switched_at = wait_for(
            lambda: next((t for t, v in list(traffic.grpc_versions) if v == new), None),
            SWITCH_BUDGET_S,
            f"version {new} to answer",
        )
        wait_for(
            lambda: states(lifecycle).get(old, {}).get("state") == "END",
            SWITCH_BUDGET_S,
            f"version {old} to be unloaded",
        )
        time.sleep(0.5)  # keep the traffic going across the unload
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.count > 20
    assert switched_at - published_at < SWITCH_BUDGET_S
    final = states(lifecycle)
    assert final[new]["state"] == "AVAILABLE"
    assert final[old]["state"] == "END" and final[old]["status"]["error_code"] == "OK"
    # Once the old version is gone, everything is answered by the new one.
    answers = [GrpcApi(lifecycle).predict({"images": digit}) for _ in range(3)]
    assert [a.version for a in answers] == [new] * 3


def test_a_version_that_fails_to_load_shows_its_error_and_the_previous_keeps_serving(lifecycle, digit):
    serving = latest_available(lifecycle)
    broken = max(states(lifecycle)) + 1
    staging = lifecycle.base_path / f".staging-{broken}"
    staging.mkdir()
    (staging / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    os.rename(staging, lifecycle.base_path / str(broken))
    entry = wait_for(
        lambda: (e := states(lifecycle).get(broken)) and e["status"]["error_code"] != "OK" and e,
        SWITCH_BUDGET_S,
        f"version {broken} to report its load error",
    )
    assert entry["state"] == "END"
    assert entry["status"]["error_message"]
    time.sleep(POLL_SECONDS * 1.5)  # a later poll must not unload the version that still serves
    assert states(lifecycle)[serving]["state"] == "AVAILABLE"
    answer = GrpcApi(lifecycle).predict({"images": digit})
    assert answer.ok and answer.version == serving
    response = requests.post(lifecycle.model_url(":predict"), json={"instances": digit.tolist()}, timeout=30)
    assert response.status_code == 200
    shutil.rmtree(lifecycle.base_path / str(broken))


def warmup_file(version_dir: pathlib.Path, input_name: str, digit: np.ndarray) -> None:
    extra = version_dir / "assets.extra"
    extra.mkdir(exist_ok=True)
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.model_spec.name = "mnist"
    log.predict_log.request.inputs[input_name].CopyFrom(tensor_proto(digit))
    with tf.io.TFRecordWriter(str(extra / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())


def test_warmup_requests_are_replayed_before_available(lifecycle, digit, exported_version):
    if not lifecycle.standin:
        pytest.skip("reads the stand-in's log")
    bad = max(states(lifecycle)) + 1  # above every version the server has seen
    good = bad + 1
    # A warmup record the model cannot run fails the load, like TF Serving.
    staging = lifecycle.base_path / f".staging-{bad}"
    shutil.copytree(exported_version, staging)
    warmup_file(staging, "not_an_input", digit)
    os.rename(staging, lifecycle.base_path / str(bad))
    entry = wait_for(
        lambda: (e := states(lifecycle).get(bad)) and e["state"] == "END" and e,
        SWITCH_BUDGET_S,
        f"version {bad} to fail its warmup",
    )
    assert "Warmup" in entry["status"]["error_message"]
    staging = lifecycle.base_path / f".staging-{good}"
    shutil.copytree(exported_version, staging)
    warmup_file(staging, "images", digit)
    os.rename(staging, lifecycle.base_path / str(good))
    wait_available(lifecycle, good, timeout=SWITCH_BUDGET_S)
    assert f"version {good}: replayed 1 warmup requests" in lifecycle.log_text()
