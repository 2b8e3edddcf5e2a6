"""Decode work one client may queue: while one client sends predict_image_bytes requests of 64
large PNGs, single-digit predicts keep answering within a bound; the request over the per-request
budget is refused at once (400 / INVALID_ARGUMENT), and a second heavy request while the first
decodes is RESOURCE_EXHAUSTED (429), never a stall for everyone."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import threading
import time

import grpc
import numpy as np
import pytest
import requests
from PIL import Image
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.resilience import figures

pytestmark = pytest.mark.slow

HEAVY_SIDE = 500  # 64 of these are 16 million pixels: at the per-request budget
OVER_SIDE = 600  # 64 of these are 23 million: over it
ATTACK_SIDE = 2048  # 64 of these are 268 million pixels, each image well under the signature's own cap
DIGIT_BOUND_S = 1.0
LOAD_SECONDS = 6.0


def _png(side: int, seed: int) -> bytes:
    # A gradient compresses to a few kilobytes: cheap on the wire, a full image to decode.
    row = (np.arange(side, dtype=np.uint16) * 255 // side).astype(np.uint8)
    image = np.tile(np.roll(row, seed), (side, 1))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_body(side: int) -> dict:
    return {
        "signature_name": "predict_image_bytes",
        "instances": [{"b64": base64.b64encode(_png(side, seed)).decode()} for seed in range(64)],
    }


def test_a_request_over_the_pixel_budget_is_refused_at_once(server):
    body = json.dumps(_image_body(OVER_SIDE))  # 64 PNGs encoded outside the timing
    started = time.monotonic()
    response = requests.post(server.model_url(":predict"), data=body, timeout=60)
    seconds = time.monotonic() - started
    assert response.status_code == 400, response.text[:300]
    assert "pixels" in response.json()["error"] and "Traceback" not in response.text
    assert seconds < DIGIT_BOUND_S

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = "predict_image_bytes"
    request.inputs["image_bytes"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            string_val=[_png(OVER_SIDE, seed) for seed in range(64)],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=64)]),
        )
    )
    with pytest.raises(grpc.RpcError) as raised:
        prediction_service_pb2_grpc.PredictionServiceStub(server.channel).Predict(request, timeout=60)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pixels" in raised.value.details()


def _run_heavy_client(server, body, stop: threading.Event, statuses: list[int]) -> None:
    with requests.Session() as session:
        while not stop.is_set():
            response = session.post(server.model_url(":predict"), json=body, timeout=120)
            statuses.append(response.status_code)
            if response.status_code != 200:
                assert "error" in response.json()


def test_digit_predicts_keep_answering_while_one_client_sends_64_large_pngs_twice(server):
    heavy_body = _image_body(ATTACK_SIDE)
    digit_body = {"instances": [np.zeros((28, 28)).tolist()]}
    stop = threading.Event()
    heavy_statuses: list[int] = []
    latencies = []
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        heavy = [pool.submit(_run_heavy_client, server, heavy_body, stop, heavy_statuses) for _ in range(2)]
        try:
            with requests.Session() as session:
                deadline = time.monotonic() + LOAD_SECONDS
                while time.monotonic() < deadline or len(heavy_statuses) < 2:
                    started = time.monotonic()
                    response = session.post(server.model_url(":predict"), json=digit_body, timeout=60)
                    latencies.append(time.monotonic() - started)
                    assert response.status_code == 200, response.text[:300]
                    assert time.monotonic() < deadline + 120, "heavy requests never answered"
        finally:
            stop.set()
            for future in heavy:
                future.result(timeout=180)
    worst, p99 = max(latencies), float(np.percentile(latencies, 99))
    figures.record(
        "abuse",
        f"model server: digit predicts while one client sends 2 x 64 PNGs of {ATTACK_SIDE}x{ATTACK_SIDE}",
        digit_requests=len(latencies),
        worst_seconds=round(worst, 3),
        p99_seconds=round(p99, 3),
        heavy_requests=len(heavy_statuses),
        heavy_statuses=sorted(set(heavy_statuses)),
    )
    assert worst < DIGIT_BOUND_S, f"a digit predict took {worst:.2f} s while heavy image requests ran"
    assert set(heavy_statuses) == {400}, (worst, heavy_statuses)


def test_a_second_heavy_request_while_one_decodes_is_resource_exhausted(server):
    body = _image_body(HEAVY_SIDE)  # at the per-request budget: served, but one at a time
    stop = threading.Event()
    statuses: list[int] = []
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        clients = [pool.submit(_run_heavy_client, server, body, stop, statuses) for _ in range(2)]
        deadline = time.monotonic() + 60
        while (
            not (200 in statuses and 429 in statuses)
            and time.monotonic() < deadline
            and not any(c.done() for c in clients)
        ):
            time.sleep(0.05)
        stop.set()
        for client in clients:
            client.result(timeout=120)
    assert set(statuses) <= {200, 429}
    assert 200 in statuses and 429 in statuses, statuses
