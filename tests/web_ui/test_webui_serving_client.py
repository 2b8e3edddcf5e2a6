"""mnist_common.serving_client without a model server: parsing, retries, error mapping.

The same client against the real stand-in is in test_webui_integration.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests

from mnist_common import serving_client as sc
from mnist_run.ports import free_port

IMAGES = np.zeros((2, 28, 28), dtype=np.float32)


def closed_port() -> int:
    return free_port()  # nobody listens once the probe socket is closed


class FakeResponse:
    def __init__(self, status: int, payload):
        self.status_code = status
        self.text = payload if isinstance(payload, str) else json.dumps(payload)
        self.reason = "reason"

    def json(self):
        return json.loads(self.text)


class ScriptedSession:
    """Stands in for requests.Session: answers from a script, records every call."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls: list[tuple[str, str, dict | None]] = []

    def request(self, method, url, data=None, headers=None, timeout=None):
        assert timeout is not None  # every call has a timeout
        self.calls.append((method, url, None if data is None else json.loads(data)))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return FakeResponse(*answer)

    def close(self):
        pass


def status(*versions):
    return 200, {
        "model_version_status": [
            {"version": str(v), "state": state, "status": {"error_code": "OK", "error_message": ""}}
            for v, state in versions
        ]
    }


def outputs(count=2, top=7):
    probabilities = [[0.0] * 10 for _ in range(count)]
    for row in probabilities:
        row[top] = 1.0
    return 200, {"outputs": {"probabilities": probabilities, "classes": [top] * count}}


def rest_client(answers, **options) -> tuple[sc.RestServingClient, ScriptedSession]:
    client = sc.RestServingClient("http://model:8501/", "mnist", backoff_seconds=0.001, **options)
    session = ScriptedSession(answers)
    client._session = session
    return client, session


# ---------------------------------------------------------------------------- REST ------------


def test_rest_predict_names_the_version_it_sends_to():
    client, session = rest_client([status((1, "END"), (2, "AVAILABLE"), (3, "LOADING")), outputs()])
    result = client.predict(IMAGES)
    assert result.model_version == 2 and result.model_name == "mnist"
    assert result.probabilities.shape == (2, 10) and result.probabilities.dtype == np.float32
    assert list(result.classes) == [7, 7]
    method, url, body = session.calls[1]
    assert (method, url) == ("POST", "http://model:8501/v1/models/mnist/versions/2:predict")
    assert body["signature_name"] == "serving_default"
    assert np.asarray(body["inputs"]["images"]).shape == (2, 28, 28)


def test_rest_version_is_cached_then_re_read_when_the_server_dropped_it():
    client, session = rest_client(
        [
            status((2, "AVAILABLE")),
            outputs(),
            outputs(),
            (404, {"error": "Servable not found"}),
            status((3, "AVAILABLE")),
            outputs(),
        ],
        version_cache_seconds=60,
    )
    assert client.predict(IMAGES).model_version == 2
    assert client.predict(IMAGES).model_version == 2  # no second status call
    assert client.predict(IMAGES).model_version == 3
    assert [url.rsplit("/", 2)[-1] for _, url, _ in session.calls] == [
        "mnist",
        "2:predict",
        "2:predict",
        "2:predict",
        "mnist",
        "3:predict",
    ]


def test_rest_without_an_available_version_is_not_found():
    client, _ = rest_client([status((1, "LOADING"))])
    with pytest.raises(sc.NotFound, match="LOADING"):
        client.predict(IMAGES)


def test_rest_retries_unavailable_a_bounded_number_of_times():
    refused = requests.ConnectionError("Connection refused")
    client, session = rest_client([refused, refused, status((1, "AVAILABLE"))], retries=2)
    assert client.model_status().available_versions == [1]
    client, session = rest_client([refused] * 3, retries=2)
    with pytest.raises(sc.ModelServerUnavailable):
        client.model_status()
    assert len(session.calls) == 3


def test_rest_does_not_retry_a_timeout():
    client, session = rest_client([requests.ReadTimeout("slow")], retries=2)
    with pytest.raises(sc.ModelServerUnavailable, match="did not answer within") as caught:
        client.model_status()
    assert caught.value.retryable is False and len(session.calls) == 1


@pytest.mark.parametrize(
    "status_code, payload, error",
    [
        (400, {"error": "Expected input of shape"}, sc.BadRequest),
        (404, {"error": "Could not find any versions of model mnist"}, sc.NotFound),
        (503, {"error": "overloaded"}, sc.ModelServerUnavailable),
        (500, "<html>boom</html>", sc.ServingError),
        (200, "[1, 2]", sc.ServingError),
    ],
)
def test_rest_errors_are_typed(status_code, payload, error):
    client, _ = rest_client([(status_code, payload)] * 3)
    with pytest.raises(error):
        client.model_status()


def test_rest_metadata_is_parsed_from_tf_servings_layout():
    signature = {
        "inputs": {
            "images": {
                "dtype": "DT_FLOAT",
                "tensor_shape": {"dim": [{"size": "-1"}, {"size": "28"}, {"size": "28"}], "unknown_rank": False},
                "name": "x:0",
            }
        },
        "outputs": {"classes": {"dtype": "DT_INT64", "tensor_shape": {"dim": [{"size": "-1"}]}}},
        "method_name": "tensorflow/serving/predict",
    }
    payload = {
        "model_spec": {"name": "mnist", "signature_name": "", "version": "4"},
        "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}},
    }
    client, session = rest_client([(200, payload)])
    metadata = client.model_metadata()
    assert session.calls[0][1] == "http://model:8501/v1/models/mnist/metadata"
    assert metadata.model_version == 4
    assert metadata.signatures["serving_default"].inputs["images"] == sc.TensorInfo("DT_FLOAT", (-1, 28, 28))
    assert metadata.to_dict()["signatures"]["serving_default"]["outputs"]["classes"]["shape"] == [-1]


def test_rest_refuses_a_malformed_answer():
    client, _ = rest_client([status((1, "AVAILABLE")), (200, {"outputs": {"probabilities": [[0.1] * 10]}})])
    with pytest.raises(sc.ServingError, match="classes"):
        client.predict(IMAGES)


def test_rest_against_a_closed_port_is_unavailable():
    client = sc.RestServingClient(
        f"http://127.0.0.1:{closed_port()}", "mnist", timeout_seconds=2, backoff_seconds=0.001
    )
    with pytest.raises(sc.ModelServerUnavailable):
        client.predict(IMAGES)


# ---------------------------------------------------------------------------- shared ----------


@pytest.mark.parametrize("shape", [(28, 28), (1, 28, 27), (0, 28, 28), (1, 784)])
def test_images_of_the_wrong_shape_are_refused_before_sending(shape):
    client, session = rest_client([])
    with pytest.raises(ValueError, match="28, 28"):
        client.predict(np.zeros(shape, dtype=np.float32))
    assert session.calls == []


def test_create_client_checks_its_arguments():
    with pytest.raises(ValueError, match="protocol"):
        sc.create_client("soap", "mnist")
    with pytest.raises(ValueError, match="grpc_address"):
        sc.create_client("grpc", "mnist")
    with pytest.raises(ValueError, match="rest_url"):
        sc.create_client("rest", "mnist")
    with pytest.raises(ValueError, match="timeout"):
        sc.create_client("rest", "mnist", rest_url="http://x", timeout_seconds=0)
    assert isinstance(sc.create_client("rest", "mnist", rest_url="http://x"), sc.RestServingClient)


def test_model_status_knows_what_is_available():
    status_ = sc.ModelStatus(
        "mnist", (sc.VersionStatus(1, "END"), sc.VersionStatus(3, "AVAILABLE"), sc.VersionStatus(2, "AVAILABLE"))
    )
    assert status_.available_versions == [2, 3] and status_.is_available
    assert not sc.ModelStatus("mnist", (sc.VersionStatus(1, "LOADING"),)).is_available


# ---------------------------------------------------------------------------- gRPC ------------


@pytest.fixture(scope="module")
def tensor_pb2():
    from tensorflow.core.framework import tensor_pb2  # imports TensorFlow: once for this module

    return tensor_pb2


def test_tensor_to_numpy_reads_tensor_content_and_value_fields(tensor_pb2):
    packed = tensor_pb2.TensorProto(dtype=1, tensor_content=np.arange(6, dtype="<f4").tobytes())
    for size in (2, 3):
        packed.tensor_shape.dim.add().size = size
    assert np.array_equal(sc.tensor_to_numpy(packed), np.arange(6, dtype=np.float32).reshape(2, 3))

    listed = tensor_pb2.TensorProto(dtype=9, int64_val=[4, 5])
    listed.tensor_shape.dim.add().size = 2
    assert sc.tensor_to_numpy(listed).tolist() == [4, 5]

    uniform = tensor_pb2.TensorProto(dtype=1, float_val=[0.5])
    uniform.tensor_shape.dim.add().size = 3
    assert sc.tensor_to_numpy(uniform).tolist() == [0.5, 0.5, 0.5]

    wrong = tensor_pb2.TensorProto(dtype=1, float_val=[1.0, 2.0])
    wrong.tensor_shape.dim.add().size = 3
    with pytest.raises(sc.ServingError):
        sc.tensor_to_numpy(wrong)
    with pytest.raises(sc.ServingError, match="dtype"):
        sc.tensor_to_numpy(tensor_pb2.TensorProto(dtype=7))  # DT_STRING


def test_grpc_against_a_closed_port_is_unavailable_after_bounded_retries(tensor_pb2, monkeypatch):
    client = sc.GrpcServingClient(
        f"127.0.0.1:{closed_port()}", "mnist", timeout_seconds=2, retries=2, backoff_seconds=0.001
    )
    attempts = []
    original = client._translate
    monkeypatch.setattr(client, "_translate", lambda error: attempts.append(1) or original(error))
    with client, pytest.raises(sc.ModelServerUnavailable, match="unavailable"):
        client.predict(IMAGES)
    assert len(attempts) == 3


def test_grpc_cancelled_by_a_stopping_server_is_retried_and_unknown_failures_are_not():
    import grpc

    client = sc.GrpcServingClient("127.0.0.1:1", "mnist", timeout_seconds=2, retries=2, backoff_seconds=0.001)

    class Failure(Exception):
        def __init__(self, code):
            self._code = code

        def code(self):
            return self._code

        def details(self):
            return self._code.name

    cancelled = client._translate(Failure(grpc.StatusCode.CANCELLED))
    assert isinstance(cancelled, sc.ModelServerUnavailable) and cancelled.retryable
    internal = client._translate(Failure(grpc.StatusCode.INTERNAL))
    assert type(internal) is sc.ServingError
    client.close()
