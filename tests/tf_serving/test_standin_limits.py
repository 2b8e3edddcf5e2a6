"""The stand-in's own guarantees beyond the wire contract: input limits, metrics, batching."""

from __future__ import annotations

import concurrent.futures
import re

import numpy as np
import pytest
import requests

from tests.tf_serving.serving_wire import GrpcApi

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digit(data_dir):
    from mnist_common.dataset import load_split

    return load_split(data_dir, "test").as_float()[:1]


def test_nan_and_infinity_are_rejected(standin_only, digit):
    poisoned = digit.copy()
    poisoned[0, 3, 3] = np.nan
    body = '{"instances": ' + str(poisoned.tolist()).replace("nan", "NaN") + "}"
    response = requests.post(standin_only.model_url(":predict"), data=body, timeout=30)
    assert response.status_code == 400
    assert "NaN" in response.json()["error"]
    poisoned[0, 3, 3] = np.inf
    answer = GrpcApi(standin_only).predict({"images": poisoned})
    assert (answer.ok, answer.error_kind) == (False, "BAD_REQUEST")
    assert "NaN or Infinity" in answer.message


def test_oversized_request_is_refused_with_a_json_error(standin_only):
    body = b'{"instances": [' + b"0.5," * ((1 << 20) + 50_000) + b"0.5]}"  # just over 4 MiB, the default limit
    response = requests.post(standin_only.model_url(":predict"), data=body, timeout=60)
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["error"]


def test_unknown_routes_answer_json_and_never_a_trace(standin_only):
    response = requests.get(f"{standin_only.rest_url}/nothing/here", timeout=10)
    assert response.status_code == 404 and set(response.json()) == {"error"}
    response = requests.delete(standin_only.model_url(), timeout=10)
    assert response.status_code == 400 and "Malformed request" in response.json()["error"]
    response = requests.get(f"{standin_only.rest_url}/v1/models/mn%0Aist", timeout=10)  # encoded newline
    assert response.status_code == 404 and set(response.json()) == {"error"}


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_prometheus_metrics_count_requests_errors_and_latency(standin_only, digit):
    url = f"{standin_only.rest_url}/monitoring/prometheus/metrics"
    before = requests.get(url, timeout=10).text
    requests.post(standin_only.model_url(":predict"), json={"instances": digit.tolist()}, timeout=30)
    GrpcApi(standin_only).predict({"images": digit})
    requests.post(standin_only.model_url(":predict"), json={"instances": [[1.0]]}, timeout=30)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    after = response.text
    for entrypoint in ("REST", "GRPC"):
        labels = {"model_name": "mnist", "api": "predict", "entrypoint": entrypoint, "status": "OK"}
        assert (
            metric(after, "tfserving_requests_total", **labels)
            == metric(before, "tfserving_requests_total", **labels) + 1
        )
    errors = {"model_name": "mnist", "api": "predict", "entrypoint": "REST", "status": "INVALID_ARGUMENT"}
    assert metric(after, "tfserving_request_errors_total", **errors) >= 1
    assert metric(after, "tfserving_request_latency_seconds_count", model_name="mnist", api="predict") >= 2
    assert re.search(r'tfserving_model_version_available\{model_name="mnist",version="\d+"\} 1\.0', after)


def test_concurrent_requests_are_batched(standin_only, digit):
    url = f"{standin_only.rest_url}/monitoring/prometheus/metrics"

    def batch_stats():
        text = requests.get(url, timeout=10).text
        return metric(text, "tfserving_batch_size_sum"), metric(text, "tfserving_batch_size_count")

    rows_before, calls_before = batch_stats()
    body = {"instances": digit.tolist()}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(
            pool.map(
                lambda _: requests.post(standin_only.model_url(":predict"), json=body, timeout=60).status_code,
                range(64),
            )
        )
    assert codes == [200] * 64
    rows_after, calls_after = batch_stats()
    assert rows_after - rows_before == 64
    assert calls_after - calls_before < 64  # some signature calls served several requests
