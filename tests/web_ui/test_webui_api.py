"""The JSON API, pages and probes, against a fake model server (no TensorFlow needed)."""

from __future__ import annotations

import base64
import json
import os
import re

import pytest
from PIL import Image

from mnist_common import serving_client as sc
from mnist_webui.metrics import Metrics
from tests.web_ui.drawing import draw_seven, encode

VALID_PIXELS = [[0.0] * 28 for _ in range(28)]


def post(client, body, content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/v1/predict", data=data, content_type=content_type)


def assert_json_error(response, status):
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in body["error"]
    return body["error"]


# ---------------------------------------------------------------------------- predict ---------


@pytest.mark.parametrize("shape", ["nested", "flat"])
def test_predict_pixels(client, fake_client, shape):
    pixels = [[0.5] * 28 for _ in range(28)]
    body = {"pixels": pixels if shape == "nested" else [v for row in pixels for v in row]}
    response = post(client, body)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["prediction"] == 5  # the fake predicts round(mean * 10)
    assert len(answer["probabilities"]) == 10 and answer["probabilities"][5] == pytest.approx(0.82)
    assert answer["model"] == {"name": "mnist", "version": 3}
    assert answer["latency_ms"] >= 0
    assert "preprocessed" not in answer
    assert fake_client.predicted[-1].shape == (28, 28)
    assert float(fake_client.predicted[-1][3, 4]) == pytest.approx(0.5)


@pytest.mark.parametrize("as_data_uri", [False, True])
def test_predict_image_is_preprocessed_like_mnist(client, fake_client, seven_png, as_data_uri):
    encoded = base64.b64encode(seven_png).decode()
    if as_data_uri:
        encoded = "data:image/png;base64," + encoded
    response = post(client, {"image": encoded})
    assert response.status_code == 200, response.data
    answer = response.get_json()
    assert answer["preprocessed"].startswith("data:image/png;base64,")
    seen = fake_client.predicted[-1]
    # What reached the model is the MNIST-style version: bright ink on black, centred.
    assert seen.shape == (28, 28) and seen[0, 0] == 0.0 and seen.max() == pytest.approx(1.0, abs=0.05)


def test_jpeg_upload_is_accepted(client):
    jpeg = encode(draw_seven(), "JPEG")
    response = post(client, {"image": base64.b64encode(jpeg).decode()})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b'{"pixels": NaN}', "NaN"),
        (b'{"pixels": [Infinity]}', "Infinity"),
        ({}, "exactly one"),
        ({"pixels": VALID_PIXELS, "image": "AAAA"}, "exactly one"),
        ({"pixels": VALID_PIXELS, "addr": "evil.example", "port": 1}, "unknown field"),
        ({"pixels": "0.5"}, "list"),
        ({"pixels": [0.5] * 783}, "784"),
        ({"pixels": [[0.5] * 28] * 27}, "784 numbers or 28 lists"),
        ({"pixels": [[0.5] * 27] * 28}, "784 numbers or 28 lists"),
        ({"pixels": [[0.5] * 28] * 27 + [[0.5] * 27 + [[0.5]]]}, "finite number"),
        ({"pixels": [0.5] * 783 + [1.5]}, "[0, 1]"),
        ({"pixels": [0.5] * 783 + [-0.01]}, "[0, 1]"),
        ({"pixels": [0.5] * 783 + ["0.5"]}, "finite number"),
        ({"pixels": [0.5] * 783 + [True]}, "finite number"),
        ({"pixels": [0.5] * 783 + [None]}, "finite number"),
        (b'{"pixels": [' + b"0.5, " * 783 + b"1e400]}", "finite number"),  # parses as inf
        (b'{"pixels": [' + b"0.5, " * 783 + b"-1e400]}", "finite number"),  # -inf
        (b'{"pixels": [' + b"0.5, " * 783 + b"1e300]}", "[0, 1]"),  # finite, out of range
        (b'{"pixels": [' + b"0.5, " * 783 + b"1" + b"0" * 400 + b"]}", "finite number"),  # no float
        ({"image": 12}, "base64"),
        ({"image": ""}, "base64"),
        ({"image": "not base64!!"}, "base64"),
        ({"image": "data:image/png,abc"}, "base64"),
    ],
)
def test_bad_requests_get_400_with_a_reason(client, fake_client, body, fragment):
    reason = assert_json_error(post(client, body), 400)
    assert fragment in reason
    assert fake_client.predicted == []


def test_a_blank_drawing_is_a_400(client):
    blank = encode(Image.new("L", (280, 280), 0))
    reason = assert_json_error(post(client, {"image": base64.b64encode(blank).decode()}), 400)
    assert "no digit" in reason


def test_a_file_that_is_not_an_image_is_a_415(client):
    text = base64.b64encode(b"#!/bin/sh\necho not an image\n").decode()
    assert "PNG or JPEG" in assert_json_error(post(client, {"image": text}), 415)


def test_a_body_that_is_not_json_typed_is_a_415(client):
    assert_json_error(post(client, b"pixels=1", content_type="application/x-www-form-urlencoded"), 415)


def test_a_body_over_one_mib_is_a_413(client, fake_client):
    body = json.dumps({"image": "A" * (1024 * 1024)})
    assert "larger than 1048576" in assert_json_error(post(client, body), 413)
    assert fake_client.predicted == []


def test_an_image_with_too_many_pixels_is_a_413(client):
    bomb = encode(Image.new("L", (4200, 4200), 255))  # small file, 17.6 M pixels
    assert len(bomb) < 1024 * 1024
    assert_json_error(post(client, {"image": base64.b64encode(bomb).decode()}), 413)


def test_wrong_method_and_unknown_path_are_json(client):
    assert_json_error(client.get("/api/v1/predict"), 405)
    assert_json_error(client.get("/api/v1/nothing-here"), 404)


# ---------------------------------------------------------------------------- model server ----


@pytest.mark.parametrize(
    "failure, status",
    [
        (sc.ModelServerUnavailable("connection refused"), 503),
        (sc.ModelServerUnavailable("deadline hit", retryable=False), 503),
        (sc.NotFound("no model"), 503),
        (sc.BadRequest("bad shape"), 502),
        (sc.ServingError("internal"), 502),
    ],
)
def test_model_server_failures_become_json_errors(client, fake_client, failure, status):
    fake_client.failure = failure
    reason = assert_json_error(post(client, {"pixels": VALID_PIXELS}), status)
    assert "model server" in reason
    assert str(failure) not in reason  # server-side details stay in the log


def test_the_app_recovers_when_the_model_server_comes_back(client, fake_client):
    fake_client.failure = sc.ModelServerUnavailable("down")
    assert post(client, {"pixels": VALID_PIXELS}).status_code == 503
    readiness = client.get("/readyz")
    assert readiness.status_code == 200 and readiness.get_json()["model_server"]["state"] == "down"
    page = client.get("/").data.decode()
    banner = page.split('id="banner"', 1)[1].split(">", 1)[0]
    assert "hidden" not in banner and "unavailable" in page
    fake_client.failure = None
    assert post(client, {"pixels": VALID_PIXELS}).status_code == 200
    assert client.get("/readyz").get_json()["model_server"]["state"] == "up"


def test_readyz_reflects_the_ui_process_not_the_model_server(client, fake_client):
    fake_client.failure = sc.ModelServerUnavailable("down")
    calls_before = len(fake_client.predicted)
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json()["status"] == "ready"
    assert response.get_json()["model_server"]["state"] == "unknown"  # nothing asked yet, and readyz asks nothing
    assert len(fake_client.predicted) == calls_before
    assert post(client, {"pixels": VALID_PIXELS}).status_code == 503
    assert client.get("/readyz").get_json()["model_server"]["state"] == "down"
    assert "webui_model_server_up 0.0" in client.get("/metrics").data.decode()
    fake_client.failure = None
    assert post(client, {"pixels": VALID_PIXELS}).status_code == 200
    assert "webui_model_server_up 1.0" in client.get("/metrics").data.decode()


def test_healthz_does_not_need_the_model_server(client, fake_client):
    fake_client.failure = sc.ModelServerUnavailable("down")
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_model_endpoint_reports_status_and_signatures(client):
    body = client.get("/api/v1/model").get_json()
    assert body["status"]["available"] is True
    assert body["status"]["versions"][0] == {
        "version": 3,
        "state": "AVAILABLE",
        "error_code": "OK",
        "error_message": "",
    }
    signature = body["metadata"]["signatures"]["serving_default"]
    assert signature["inputs"]["images"] == {"dtype": "DT_FLOAT", "shape": [-1, 28, 28]}


# ---------------------------------------------------------------------------- samples ---------


def test_sample_is_a_held_out_digit(client, held_out):
    body = client.get("/api/v1/sample").get_json()
    assert 0 <= body["label"] <= 9 and 0 <= body["index"] < len(held_out)
    assert len(body["pixels"]) == 28 and all(len(row) == 28 for row in body["pixels"])
    assert body["image"].startswith("data:image/png;base64,")
    png = base64.b64decode(body["image"].split(",", 1)[1])
    assert Image.open(__import__("io").BytesIO(png)).size == (28, 28)


def test_sample_without_data_is_a_503(fake_client):
    from mnist_webui import create_app
    from mnist_webui.config import Settings
    from mnist_webui.samples import HeldOutDigits

    app = create_app(
        {"MNIST_SETTINGS": Settings(), "MNIST_CLIENT": fake_client, "MNIST_DIGITS": HeldOutDigits.load("/nonexistent")}
    )
    reason = assert_json_error(app.test_client().get("/api/v1/sample"), 503)
    assert "make data" in reason
    assert app.test_client().get("/").status_code == 200  # the page still offers drawing


# ---------------------------------------------------------------------------- pages -----------


def test_start_page_shows_a_digit_its_label_prediction_and_ten_bars(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.data.decode()
    assert 'id="digit-image"' in html and "data:image/png;base64," in html
    assert html.count('class="bar-row') == 10
    assert 'id="model-version">3<' in html
    assert 'id="banner" class="banner" role="alert" hidden' in html


def test_every_page_asset_comes_from_the_app_under_a_strict_csp(client):
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    html = page.data.decode()
    assert "http://" not in html and "https://" not in html and "<style" not in html
    assert "style=" not in html and "<script>" not in html  # nothing inline that CSP would block
    for asset in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
        assert asset in html
        with client.get(asset) as response:
            assert response.status_code == 200


def test_no_file_is_written_per_request(client, app, seven_png, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    package = app.root_path  # the tutorial wrote a PNG per request into its static folder

    def snapshot():
        return sorted(os.path.join(d, f) for d, _, files in os.walk(package) for f in files if "__pycache__" not in d)

    before = snapshot()
    post(client, {"image": base64.b64encode(seven_png).decode()})
    client.get("/")
    client.get("/api/v1/sample")
    assert snapshot() == before and os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------- metrics, spec ---


def test_metrics_count_requests_errors_and_latency_per_endpoint(client):
    post(client, {"pixels": VALID_PIXELS})
    post(client, b"{bad")
    text = client.get("/metrics").data.decode()
    assert 'webui_http_requests_total{endpoint="/api/v1/predict",method="POST",status="200"} 1.0' in text
    assert 'webui_http_errors_total{endpoint="/api/v1/predict",status="400"} 1.0' in text
    assert 'webui_http_request_duration_seconds_count{endpoint="/api/v1/predict"} 2.0' in text
    assert 'webui_model_server_request_duration_seconds_count{call="predict",outcome="ok"} 1.0' in text


def test_openapi_documents_every_api_route(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    pages = {"/", "/model"}  # HTML for people; everything else is documented
    routes = {rule.rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"} - pages
    # Flask's <int:version> is OpenAPI's {version}
    assert {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route) for route in routes} == set(spec["paths"])


def test_openapi_schemas_match_real_answers(client, fake_client, monkeypatch):
    monkeypatch.setattr(fake_client, "protocol", "grpc")
    jsonschema = pytest.importorskip("jsonschema")
    spec = client.get("/api/v1/openapi.json").get_json()

    def check(instance, name):
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        jsonschema.validate(instance, schema)

    check(post(client, {"pixels": VALID_PIXELS}).get_json(), "Prediction")
    check(client.get("/api/v1/sample").get_json(), "Sample")
    check(client.get("/api/v1/model").get_json(), "ModelInfo")
    check(post(client, b"{bad").get_json(), "Error")


def test_a_failed_version_is_described_in_our_words_not_the_servers(client, fake_client, monkeypatch):
    internal = (
        "Failed to load servable: /models/mnist/4/variables/variables.index; "
        "node StatefulPartitionedCall/sequential_1/conv2d/Conv2D: Invalid argument"
    )
    monkeypatch.setattr(
        fake_client,
        "model_status",
        lambda: sc.ModelStatus(
            "mnist", (sc.VersionStatus(3, "AVAILABLE"), sc.VersionStatus(4, "END", "INVALID_ARGUMENT", internal))
        ),
    )
    body = client.get("/api/v1/model").get_json()
    failed = body["status"]["versions"][1]
    assert failed["error_code"] == "INVALID_ARGUMENT"
    assert (
        failed["error_message"] == "version 4 could not be loaded (INVALID_ARGUMENT); the model server's log says why"
    )
    assert "/models/" not in str(body) and "StatefulPartitionedCall" not in str(body)
    assert body["status"]["versions"][0]["error_message"] == ""


def test_metric_children_are_kept_and_count_into_the_registry():
    metrics = Metrics()
    child = metrics.child(metrics.requests, "/x", "GET", "200")
    assert metrics.child(metrics.requests, "/x", "GET", "200") is child
    assert child is metrics.requests.labels("/x", "GET", "200")
    assert metrics.child(metrics.requests, "/x", "GET", "404") is not child
    child.inc()
    child.inc()
    value = metrics.registry.get_sample_value(
        "webui_http_requests_total", {"endpoint": "/x", "method": "GET", "status": "200"}
    )
    assert value == 2.0
