"""The TF Serving contract this system relies on, over REST and gRPC.

Runs against the stand-in by default, or any TF Serving given by SERVING_REST_URL + SERVING_GRPC_ADDRESS
(e.g. the real tensorflow/serving image from `make serve-docker`).
"""

from __future__ import annotations

import base64
import io

import grpc
import numpy as np
import pytest
import requests
from PIL import Image
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from tests.tf_serving.serving_wire import GrpcApi, RestApi

pytestmark = pytest.mark.slow

MODEL = "mnist"


@pytest.fixture(params=["rest", "grpc"])
def api(request, server):
    return RestApi(server) if request.param == "rest" else GrpcApi(server)


@pytest.fixture(scope="module")
def digits(data_dir):
    from mnist_common.dataset import load_split

    split = load_split(data_dir, "test")
    return split.as_float()[:32], split.labels[:32].astype(np.int64), split.images[:4]


@pytest.fixture(scope="module")
def latest_version(server) -> int:
    status = requests.get(server.model_url(), timeout=10).json()["model_version_status"]
    return max(int(s["version"]) for s in status if s["state"] == "AVAILABLE")


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


# ---- model status ------------------------------------------------------------------------------


def test_rest_status_body_is_tf_servings(server, latest_version):
    response = requests.get(server.model_url(f"/versions/{latest_version}"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {
        "model_version_status": [
            {"version": str(latest_version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def test_grpc_status(server, latest_version):
    response = GrpcApi(server).status(version=latest_version)
    [entry] = response.model_version_status
    assert (entry.version, entry.state, entry.status.error_code) == (latest_version, entry.AVAILABLE, 0)


def test_status_of_unknown_model_and_version(server):
    response = requests.get(server.model_url(model="no_such_model"), timeout=10)
    assert response.status_code == 404
    assert "no_such_model" in response.json()["error"]
    response = requests.get(server.model_url("/versions/987654"), timeout=10)
    assert response.status_code == 404
    assert "987654" in response.json()["error"]
    with pytest.raises(grpc.RpcError) as caught:
        GrpcApi(server).status(model="no_such_model")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


# ---- metadata ----------------------------------------------------------------------------------


def test_rest_metadata_lists_both_signatures(server, latest_version):
    response = requests.get(server.model_url("/metadata"), timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["model_spec"] == {"name": MODEL, "signature_name": "", "version": str(latest_version)}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    images = default["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [int(d["size"]) for d in images["tensor_shape"]["dim"]] == [-1, 28, 28]
    assert default["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert default["outputs"]["classes"]["dtype"] == "DT_INT64"
    assert signatures["predict_image_bytes"]["inputs"]["image_bytes"]["dtype"] == "DT_STRING"


def test_grpc_metadata(server, latest_version):
    response = GrpcApi(server).metadata()
    assert response.model_spec.name == MODEL and response.model_spec.version.value == latest_version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    assert {"serving_default", "predict_image_bytes"} <= set(signature_map.signature_def)
    assert set(signature_map.signature_def["serving_default"].outputs) == {"probabilities", "classes"}


# ---- predict -----------------------------------------------------------------------------------


def check_predictions(outputs, labels):
    probabilities, classes = outputs["probabilities"], outputs["classes"]
    assert probabilities.shape == (len(labels), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(classes, probabilities.argmax(axis=1))
    # One epoch on 1,500 digits is far better than chance (10 %): this catches scrambled inputs.
    assert (classes == labels).mean() > 0.5


def test_predict_row_format(api, digits, latest_version):
    images, labels, _ = digits
    answer = api.predict({"images": images})
    assert answer.ok, answer.message
    check_predictions(answer.outputs, labels)
    if api.name == "grpc":  # the version that answered and the signature it ran
        assert (answer.version, answer.signature_name) == (latest_version, "serving_default")


def test_rest_row_format_has_one_object_per_instance(server, digits):
    images, _, _ = digits
    response = requests.post(server.model_url(":predict"), json={"instances": images[:2].tolist()}, timeout=30)
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 2
    assert set(predictions[0]) == {"probabilities", "classes"}
    assert isinstance(predictions[0]["classes"], int) and len(predictions[0]["probabilities"]) == 10


def test_rest_named_instances_and_columnar_format(server, digits):
    images, labels, _ = digits
    named = requests.post(
        server.model_url(":predict"),
        json={"instances": [{"images": image.tolist()} for image in images[:3]]},
        timeout=30,
    )
    columnar = requests.post(
        server.model_url(":predict"),
        json={"signature_name": "serving_default", "inputs": {"images": images[:3].tolist()}},
        timeout=30,
    )
    assert named.status_code == columnar.status_code == 200
    outputs = columnar.json()["outputs"]
    assert set(outputs) == {"probabilities", "classes"}
    assert outputs["classes"] == [p["classes"] for p in named.json()["predictions"]]
    np.testing.assert_allclose(
        outputs["probabilities"], [p["probabilities"] for p in named.json()["predictions"]], rtol=1e-5
    )


def test_predict_image_bytes_signature(api, digits):
    _, labels, raw_images = digits
    encoded = np.array([png_bytes(image) for image in raw_images], dtype=object)
    answer = api.predict({"image_bytes": encoded}, signature="predict_image_bytes")
    assert answer.ok, answer.message
    assert answer.outputs["probabilities"].shape == (len(raw_images), 10)
    np.testing.assert_array_equal(answer.outputs["classes"], answer.outputs["probabilities"].argmax(axis=1))
    if api.name == "grpc":
        assert answer.signature_name == "predict_image_bytes"


def test_predict_by_version_and_label_paths(api, server, digits, latest_version):
    images, _, _ = digits
    answer = api.predict({"images": images[:2]}, version=latest_version)
    assert answer.ok, answer.message
    if api.name == "grpc":
        assert answer.version == latest_version
    version_1 = requests.get(server.model_url("/versions/1"), timeout=10)
    version_1_serves = (
        version_1.status_code == 200 and version_1.json()["model_version_status"][0]["state"] == "AVAILABLE"
    )
    if server.standin and version_1_serves:  # the fixture's models.config labels version 1 "stable"
        answer = api.predict({"images": images[:2]}, label="stable")
        assert answer.ok, answer.message
        if api.name == "grpc":
            assert answer.version == 1
    unknown_label = api.predict({"images": images[:2]}, label="no-such-label")
    assert (unknown_label.ok, unknown_label.error_kind) == (False, "BAD_REQUEST")
    assert "Unrecognized servable version label" in unknown_label.message


# ---- errors ------------------------------------------------------------------------------------


def test_unknown_model_and_version_are_not_found(api, digits):
    images, _, _ = digits
    answer = api.predict({"images": images[:1]}, model="no_such_model")
    assert (answer.ok, answer.error_kind) == (False, "NOT_FOUND")
    assert "Servable not found for request: Latest(no_such_model)" in answer.message
    answer = api.predict({"images": images[:1]}, version=987654)
    assert (answer.ok, answer.error_kind) == (False, "NOT_FOUND")
    assert "Specific(mnist, 987654)" in answer.message


def test_unknown_signature(api, digits):
    images, _, _ = digits
    answer = api.predict({"images": images[:1]}, signature="no_such_signature")
    # TF Serving: REST 400 "Serving signature name: ... not found", gRPC FAILED_PRECONDITION.
    assert (answer.ok, answer.error_kind) == (False, "BAD_REQUEST")
    assert "no_such_signature" in answer.message
    if api.name == "grpc":
        assert answer.raw.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    "bad_images",
    [
        pytest.param(np.zeros((1, 27, 28), np.float32), id="wrong-shape"),
        pytest.param(np.zeros((1, 28), np.float32), id="wrong-rank"),
    ],
)
def test_wrong_shapes_are_bad_requests(api, bad_images):
    answer = api.predict({"images": bad_images})
    assert (answer.ok, answer.error_kind) == (False, "BAD_REQUEST")
    assert "Traceback" not in answer.message


def test_grpc_wrong_dtype_is_invalid_argument(server):
    # JSON numbers carry no dtype (REST reads them as the signature's float); gRPC tensors do.
    answer = GrpcApi(server).predict({"images": np.zeros((1, 28, 28), np.float64)})
    assert (answer.ok, answer.error_kind) == (False, "BAD_REQUEST")
    assert answer.raw.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_missing_and_extra_inputs(server, digits):
    images, _, _ = digits
    api = GrpcApi(server)
    answer = api.predict({"pixels": images[:1]})
    assert (answer.ok, answer.error_kind) == (False, "BAD_REQUEST")
    assert answer.raw.code() == grpc.StatusCode.INVALID_ARGUMENT
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    with pytest.raises(grpc.RpcError) as caught:
        api.prediction.Predict(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "JSON Parse error"),
        (b"{not json", "JSON Parse error"),
        (b'{"foo": 1}', "Missing 'inputs' or 'instances' key"),
        (b'{"instances": [["a", "b"]]}', "float"),
        (b'{"instances": [[1.0]], "inputs": [[1.0]]}', "only one of"),
        (b'{"signature_name": 7, "instances": [1]}', "signature_name"),
        (b'{"instances": []}', "instances"),
    ],
)
def test_rest_bad_bodies_are_400_with_a_json_error(server, body, fragment):
    response = requests.post(server.model_url(":predict"), data=body, timeout=30)
    assert response.status_code == 400
    message = response.json()["error"]
    assert fragment in message
    assert "Traceback" not in message


def test_rest_bad_base64_image_is_400(server):
    body = {"signature_name": "predict_image_bytes", "instances": [{"b64": base64.b64encode(b"not an image").decode()}]}
    response = requests.post(server.model_url(":predict"), json=body, timeout=30)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize("method", ["classify", "regress"])
def test_rest_classify_and_regress_answer_a_clear_error(server, method):
    response = requests.post(server.model_url(f":{method}"), json={"examples": [{"x": 1.0}]}, timeout=30)
    assert response.status_code == 400
    assert "method_name" in response.json()["error"]


def test_rest_malformed_path(server):
    response = requests.post(f"{server.rest_url}/v1/models", data=b"{}", timeout=10)
    assert response.status_code == 400
    assert "Malformed request" in response.json()["error"]
