"""Pictures that cost far more to decode than their size says (a progressive JPEG of thousands of
scans, a JPEG of a hundred thousand empty markers, a PNG of a hundred thousand empty chunks): each
is refused from its structure, before it is decoded, by the web UI, by the model server's REST and
gRPC APIs, and by the exported predict_image_bytes signature itself (which the real TF Serving
runs); and pixel predicts keep their latency while the pictures keep arriving.

Each test sends a bounded number of requests: a quiet round of pixel predicts, then the same
count while another thread sends bombs, 20 a second (the round starts once the first bomb has
been answered, a handshake, not a sleep). The figures (p50, p99 and their ratio to the quiet round) go to
docs/resilience.md through `make resilience-report`; the assertions are on what every answer
was, plus a tripwire far above the quiet figures (a bomb took 7.5-20 s of a core before).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time

import grpc
import numpy as np
import pytest
import requests
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.resilience.figures import record
from tests.support import image_bombs

pytestmark = pytest.mark.slow

ROUNDS = 300  # pixel predicts in each round (quiet, then with bombs arriving)
BOMBS_PER_ROUND = 60  # the round with bombs goes on until this many have been answered
TRIPWIRE_S = 1.0  # no pixel predict may take this long while bombs arrive
BOMB_TIMEOUT_S = 10  # a refusal is milliseconds; before the bounds, a scan bomb took 7.5-20 s
JSON = {"Content-Type": "application/json"}
# Bombs arrive one every 50 ms (20 a second, each a 120-800 KB body): a steady attack, not a flood
# of the CPU, which any request can be (the client's own encoding would then be what is measured).
BOMB_INTERVAL_S = 0.05


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {
        "progressive JPEG 2048x2048, last scan x2400": image_bombs.jpeg_scan_bomb(2048, 2400),
        "JPEG with 100,000 empty markers": image_bombs.jpeg_marker_flood(100_000),
        "PNG with 50,000 empty chunks": image_bombs.png_chunk_flood(50_000),
    }


def _latencies(call, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


class BombSender:
    """Sends the bombs in turn, over and over, until stopped; records what each got."""

    def __init__(self, send, bombs: dict[str, bytes]):
        self.send = send
        self.bombs = bombs
        self.answers: list[tuple[str, object]] = []
        self.first_answered = threading.Event()
        self.each_answered = threading.Event()  # every kind of bomb answered at least once
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for name in itertools.cycle(self.bombs):
            if self.stop.wait(BOMB_INTERVAL_S if self.answers else 0):
                return
            try:
                self.answers.append((name, self.send(self.bombs[name])))
            except Exception as error:  # noqa: BLE001 - a timeout is an answer too, and a failure
                self.answers.append((name, repr(error)))
            self.first_answered.set()
            if len(self.answers) >= len(self.bombs):
                self.each_answered.set()

    def __enter__(self) -> BombSender:
        self.thread.start()
        assert self.first_answered.wait(BOMB_TIMEOUT_S * 2), "the first bomb was never answered"
        return self

    def __exit__(self, *exc) -> None:
        self.each_answered.wait(BOMB_TIMEOUT_S * len(self.bombs))
        self.stop.set()
        self.thread.join(BOMB_TIMEOUT_S * 2)


def _compare(name: str, pixel_call, send_bomb, bombs, refused, prepare=lambda data: data) -> None:
    # Bodies made before the clock starts: encoding them in the test's own process would take the
    # GIL from the pixel client and count the test's work as the server's.
    bombs = {bomb: prepare(data) for bomb, data in bombs.items()}
    pixel_call()  # warm
    quiet = _latencies(pixel_call, ROUNDS)
    with BombSender(send_bomb, bombs) as sender:
        loaded = _latencies(pixel_call, ROUNDS)
        while len(sender.answers) < BOMBS_PER_ROUND:  # the round lasts until this many have arrived
            assert sender.thread.is_alive(), "the bomb sender stopped"
            loaded += _latencies(pixel_call, 1)
    quiet_p99, loaded_p99 = float(np.percentile(quiet, 99)), float(np.percentile(loaded, 99))
    record(
        "abuse",
        f"{name}: pixel predicts while decode bombs arrive",
        pixel_predicts=len(quiet) + len(loaded),
        bombs_sent=len(sender.answers),
        quiet_p50_ms=round(1000 * float(np.median(quiet)), 1),
        quiet_p99_ms=round(1000 * quiet_p99, 1),
        bombs_p50_ms=round(1000 * float(np.median(loaded)), 1),
        bombs_p99_ms=round(1000 * loaded_p99, 1),
        p99_ratio=round(loaded_p99 / quiet_p99, 2),
    )
    wrong = [(bomb, answer) for bomb, answer in sender.answers if not refused(answer)]
    assert not wrong, wrong[:3]
    assert {bomb for bomb, _ in sender.answers} == set(bombs)
    assert max(loaded) < TRIPWIRE_S, f"a pixel predict took {max(loaded):.2f} s while bombs arrived"


# ------------------------------------------------------------------------------ the web UI ----


def test_the_web_ui_refuses_decode_bombs_and_pixel_predicts_keep_their_latency(stack, bombs):
    url = f"{stack.web.url}/api/v1/predict"
    pixels = {"pixels": [0.0] * 784}
    session, bomb_session = requests.Session(), requests.Session()

    def pixel_call():
        assert session.post(url, json=pixels, timeout=30).status_code == 200

    def prepare(data: bytes) -> bytes:
        return json.dumps({"image": base64.b64encode(data).decode()}).encode()

    def send_bomb(body: bytes):
        response = bomb_session.post(url, data=body, headers=JSON, timeout=BOMB_TIMEOUT_S)
        return response.status_code, response.json()

    def refused(answer) -> bool:
        return isinstance(answer, tuple) and answer[0] == 413 and isinstance(answer[1].get("error"), str)

    _compare("web UI", pixel_call, send_bomb, bombs, refused, prepare)


# ------------------------------------------------------------------------ the model server ----


def test_the_model_servers_rest_api_refuses_decode_bombs_and_pixel_predicts_keep_their_latency(stack, bombs):
    url = f"{stack.standin.rest_url}/v1/models/mnist:predict"
    pixels = {"instances": [np.zeros((28, 28)).tolist()]}
    session, bomb_session = requests.Session(), requests.Session()

    def pixel_call():
        assert session.post(url, json=pixels, timeout=30).status_code == 200

    def prepare(data: bytes) -> bytes:
        instances = [{"b64": base64.b64encode(data).decode()}]
        return json.dumps({"signature_name": "predict_image_bytes", "instances": instances}).encode()

    def send_bomb(body: bytes):
        response = bomb_session.post(url, data=body, headers=JSON, timeout=BOMB_TIMEOUT_S)
        return response.status_code, response.json()

    def refused(answer) -> bool:
        return isinstance(answer, tuple) and answer[0] == 400 and isinstance(answer[1].get("error"), str)

    _compare("model server REST", pixel_call, send_bomb, bombs, refused, prepare)


def _grpc_request(signature: str, key: str, tensor: tensor_pb2.TensorProto) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = signature
    request.inputs[key].CopyFrom(tensor)
    return request


def _dims(*sizes: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in sizes])


def test_the_model_servers_grpc_api_refuses_decode_bombs_and_pixel_predicts_keep_their_latency(stack, bombs):
    pixel_channel = grpc.insecure_channel(stack.standin.grpc_address)
    bomb_channel = grpc.insecure_channel(stack.standin.grpc_address, options=[("grpc.use_local_subchannel_pool", 1)])
    pixel_stub = prediction_service_pb2_grpc.PredictionServiceStub(pixel_channel)
    bomb_stub = prediction_service_pb2_grpc.PredictionServiceStub(bomb_channel)
    pixels = _grpc_request(
        "", "images", tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_dims(1, 28, 28), float_val=[0.0])
    )

    def pixel_call():
        pixel_stub.Predict(pixels, timeout=30)

    def prepare(data: bytes) -> predict_pb2.PredictRequest:
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_dims(1), string_val=[data])
        return _grpc_request("predict_image_bytes", "image_bytes", tensor)

    def send_bomb(request: predict_pb2.PredictRequest):
        try:
            bomb_stub.Predict(request, timeout=BOMB_TIMEOUT_S)
        except grpc.RpcError as error:
            return error.code(), error.details()
        return grpc.StatusCode.OK, ""

    def refused(answer) -> bool:
        return isinstance(answer, tuple) and answer[0] == grpc.StatusCode.INVALID_ARGUMENT

    try:
        _compare("model server gRPC", pixel_call, send_bomb, bombs, refused, prepare)
    finally:
        pixel_channel.close()
        bomb_channel.close()


# --------------------------------------------------------- the exported signature, in-process ----


def test_the_exported_signature_refuses_decode_bombs_and_pixel_calls_keep_their_latency(published_base, bombs):
    """What the real TF Serving runs: the SavedModel mnist-export wrote, loaded here, its
    predict_image_bytes refusing every bomb (INVALID_ARGUMENT from the graph's own checks) while
    serving_default is called from another thread."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(published_base / "1"))
    image_bytes = loaded.signatures["predict_image_bytes"]
    images = loaded.signatures["serving_default"]
    digit = tf.zeros([1, 28, 28], tf.float32)
    # Pictures of the kinds that should pass still do, so the refusals below are about structure.
    for picture in (image_bombs.progressive_jpeg(512, "RGB"), image_bombs.progressive_jpeg(2048, "L")):
        assert image_bytes(image_bytes=tf.constant([picture]))["classes"].shape == (1,)

    def pixel_call():
        images(images=digit)

    def send_bomb(data: tf.Tensor):
        try:
            image_bytes(image_bytes=data)
        except tf.errors.InvalidArgumentError as error:
            return "INVALID_ARGUMENT", error.message
        return "OK", ""

    def refused(answer) -> bool:
        return isinstance(answer, tuple) and answer[0] == "INVALID_ARGUMENT"

    # The signature checks scans (libjpeg reads markers and chunks in C, at a cost of their bytes).
    scan_bombs = {name: data for name, data in bombs.items() if "scan" in name}
    scan_bombs["progressive JPEG 4096x4096, last scan x5"] = image_bombs.jpeg_scan_bomb(4096, 5)
    _compare("exported signature in-process", pixel_call, send_bomb, scan_bombs, refused, lambda d: tf.constant([d]))
