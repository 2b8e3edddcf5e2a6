"""The client and the app against the real stand-in model server, over gRPC and over REST."""

from __future__ import annotations

import base64
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from mnist_common import serving_client as sc
from mnist_common.dataset import load_split
from mnist_webui import create_app
from mnist_webui.config import Settings
from tests.web_ui.drawing import draw_seven, encode
from tests.web_ui.webui_servers import CuttableLink, StandIn, WebUiServer

pytestmark = pytest.mark.slow

PROTOCOLS = ["grpc", "rest"]


def make_client(protocol: str, server: StandIn, **options) -> sc.ServingClient:
    return sc.create_client(protocol, "mnist", grpc_address=server.grpc_address, rest_url=server.rest_url, **options)


def settings_for(protocol: str, server: StandIn, data_dir: str) -> Settings:
    return Settings(
        serving_protocol=protocol,
        serving_grpc_address=server.grpc_address,
        serving_rest_url=server.rest_url,
        serving_timeout_seconds=2.0,
        data_dir=data_dir,
    )


@pytest.fixture(scope="module")
def test_digits(data_dir):
    return load_split(data_dir, "test", limit=200)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_predicts_held_out_digits_and_names_the_version(protocol, standin, test_digits):
    with make_client(protocol, standin) as client:
        result = client.predict(test_digits.as_float())
    assert result.model_name == "mnist" and result.model_version == 1
    assert result.probabilities.shape == (200, 10)
    assert np.allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert np.array_equal(result.classes, result.probabilities.argmax(axis=1))
    accuracy = float((result.classes == test_digits.labels).mean())
    assert accuracy > 0.7, accuracy  # a briefly trained model; an untrained one is near 0.1


def test_grpc_and_rest_agree(standin, test_digits):
    images = test_digits.as_float()[:20]
    with make_client("grpc", standin) as grpc_client, make_client("rest", standin) as rest_client:
        by_grpc, by_rest = grpc_client.predict(images), rest_client.predict(images)
    assert np.allclose(by_grpc.probabilities, by_rest.probabilities, atol=1e-5)
    assert by_grpc.model_version == by_rest.model_version == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_status_and_metadata(protocol, standin):
    with make_client(protocol, standin) as client:
        status = client.model_status()
        metadata = client.model_metadata()
    assert status.available_versions == [1]
    assert status.versions[0].error_code == "OK"
    signature = metadata.signatures["serving_default"]
    assert signature.inputs["images"] == sc.TensorInfo("DT_FLOAT", (-1, 28, 28))
    assert signature.outputs["probabilities"] == sc.TensorInfo("DT_FLOAT", (-1, 10))
    assert signature.outputs["classes"] == sc.TensorInfo("DT_INT64", (-1,))
    assert "predict_image_bytes" in metadata.signatures


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_model_is_not_found(protocol, standin):
    client = sc.create_client(protocol, "no-such-model", grpc_address=standin.grpc_address, rest_url=standin.rest_url)
    with client:
        with pytest.raises(sc.NotFound):
            client.model_status()
        with pytest.raises(sc.NotFound):
            client.predict(np.zeros((1, 28, 28), dtype=np.float32))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_app_predicts_pixels_and_drawings(protocol, standin, data_dir, test_digits):
    app = create_app({"MNIST_SETTINGS": settings_for(protocol, standin, data_dir)})
    client = app.test_client()
    digit = test_digits.as_float()[0]
    answer = client.post("/api/v1/predict", json={"pixels": digit.tolist()}).get_json()
    assert answer["model"] == {"name": "mnist", "version": 1}
    assert len(answer["probabilities"]) == 10 and abs(sum(answer["probabilities"]) - 1) < 1e-3
    assert answer["prediction"] == int(np.argmax(answer["probabilities"]))

    seven = base64.b64encode(encode(draw_seven(width=20))).decode()
    drawn = client.post("/api/v1/predict", json={"image": seven})
    assert drawn.status_code == 200 and drawn.get_json()["model"]["version"] == 1

    assert client.get("/readyz").status_code == 200
    model = client.get("/api/v1/model").get_json()
    assert model["protocol"] == protocol and model["status"]["available"] is True
    page = client.get("/").data.decode()
    assert 'id="model-version">1<' in page and 'role="alert" hidden' in page


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_app_answers_503_while_the_model_server_is_unreachable_and_recovers(protocol, standin, data_dir):
    grpc_link, rest_link = CuttableLink(standin.grpc_port).up(), CuttableLink(standin.rest_port).up()
    try:
        settings = settings_for(protocol, standin, data_dir)
        settings = dataclasses.replace(
            settings,
            serving_grpc_address=f"127.0.0.1:{grpc_link.port}",
            serving_rest_url=f"http://127.0.0.1:{rest_link.port}",
        )
        client = create_app({"MNIST_SETTINGS": settings}).test_client()
        pixels = {"pixels": [0.0] * 784}
        assert client.post("/api/v1/predict", json=pixels).status_code == 200

        grpc_link.down(), rest_link.down()
        down = client.post("/api/v1/predict", json=pixels)
        assert down.status_code == 503 and "unavailable" in down.get_json()["error"]
        readiness = client.get("/readyz")  # the UI itself is fine: it stays in the load balancer
        assert readiness.status_code == 200 and readiness.get_json()["model_server"]["state"] == "down"
        assert 'role="alert" hidden' not in client.get("/").data.decode()  # the banner shows

        grpc_link.up(), rest_link.up()  # same ports: the app must find the server by itself
        deadline = time.monotonic() + 15
        while client.post("/api/v1/predict", json=pixels).status_code != 200:
            assert time.monotonic() < deadline, "the app did not recover within 15 s"
            time.sleep(0.2)
        assert client.get("/readyz").get_json()["model_server"]["state"] == "up"
    finally:
        grpc_link.down(), rest_link.down()


def test_gunicorn_serves_the_app_and_sums_metrics_over_workers(standin, data_dir, tmp_path):
    # Over REST here; the gRPC worker is the next test's.
    web = WebUiServer(standin, data_dir, str(tmp_path / "gunicorn.log"), protocol="rest", workers=2).start()
    try:
        session = requests.Session()
        for _ in range(30):
            answer = session.post(f"{web.url}/api/v1/predict", json={"pixels": [0.0] * 784}, timeout=10)
            assert answer.status_code == 200 and answer.json()["model"]["version"] == 1
        assert session.get(f"{web.url}/readyz", timeout=10).status_code == 200
        metrics = session.get(f"{web.url}/metrics", timeout=10).text
        # Both workers answered some of the 30; /metrics shows all of them, whichever serves it.
        line = 'webui_http_requests_total{endpoint="/api/v1/predict",method="POST",status="200"} 30.0'
        assert line in metrics
        session.close()  # no idle keep-alive connection for gunicorn to wait on when stopping
    finally:
        web.stop()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


def test_a_grpc_worker_serves_without_loading_tensorflow(standin, data_dir, tmp_path):
    """TF Serving's messages come from mnist_serving_protos: no TensorFlow library in the worker."""
    web = WebUiServer(standin, data_dir, str(tmp_path / "gunicorn.log"), protocol="grpc", workers=1).start()
    try:
        with requests.Session() as session:
            for _ in range(20):
                answer = session.post(f"{web.url}/api/v1/predict", json={"pixels": [0.0] * 784}, timeout=10)
                assert answer.status_code == 200 and answer.json()["model"]["version"] == 1
        # The worker answered, so it is the master's one child and has loaded what predicting needs.
        (worker,) = _children(web.process.pid)
        with open(f"/proc/{worker}/maps") as handle:
            libraries = {line.split()[-1] for line in handle if ".so" in line}
        assert not [path for path in libraries if "tensorflow" in path], "a TensorFlow library is mapped"
    finally:
        web.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_predictions_made_at_once_each_get_their_own_digits_answer(protocol, standin, data_dir, test_digits, tmp_path):
    """Concurrent predictions share model server calls in the worker (mnist_common.coalescing):
    every answer must still be its own digit's, as the model gives it for that digit alone."""
    digits = test_digits.as_float()[:24]
    with make_client(protocol, standin) as client:
        alone = [client.predict(digit[np.newaxis]).probabilities[0] for digit in digits]
    web = WebUiServer(standin, data_dir, str(tmp_path / "gunicorn.log"), protocol=protocol, workers=1).start()
    try:
        bodies = [{"pixels": digit.tolist()} for digit in digits]

        def predict(index: int) -> tuple[int, dict]:
            with requests.Session() as session:
                return index, session.post(f"{web.url}/api/v1/predict", json=bodies[index], timeout=30).json()

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(predict, [i % len(digits) for i in range(96)]))
    finally:
        web.stop()
    for index, answer in answers:
        assert answer["model"]["version"] == 1, answer
        assert np.allclose(answer["probabilities"], alone[index], atol=1e-5), index
        assert answer["prediction"] == int(np.argmax(alone[index]))
