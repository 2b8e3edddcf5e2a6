"""Malformed request tensors over a real gRPC channel: INVALID_ARGUMENT with a plain message, as
TF Serving answers, never INTERNAL with a traceback (tensor_content that does not match the
shape, shapes whose element count overflows, negative dimensions)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import requests
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

pytestmark = pytest.mark.slow


def _request(shape, content: bytes = b"", float_val=()) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]
            ),
            tensor_content=content,
            float_val=list(float_val),
        )
    )
    return request


ONE_DIGIT = np.zeros((1, 28, 28), np.float32).tobytes()

MALFORMED = {
    "content shorter than the shape": _request([2, 28, 28], ONE_DIGIT),
    "content longer than the shape": _request([1, 28, 28], ONE_DIGIT + b"\0" * 4),
    "content not a whole number of floats": _request([1, 28, 28], ONE_DIGIT[:-1]),
    "shape overflows int64": _request([2**62, 4]),
    "shape overflows with content": _request([2**62, 4, 28, 28], ONE_DIGIT),
    "negative dimension": _request([-1, 28, 28], ONE_DIGIT),
    "one value filling an overflowing shape": _request([2**40, 2**40], float_val=[0.5]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_grpc_tensor_is_invalid_argument(server, case):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(MALFORMED[case], timeout=10)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (case, error.code(), error.details())
    assert "Traceback" not in error.details() and "Internal error" not in error.details()
    assert "images" in error.details()  # names the input at fault


def test_server_still_answers_after_malformed_tensors(server):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(server.channel)
    response = stub.Predict(_request([1, 28, 28], ONE_DIGIT), timeout=10)
    assert list(response.outputs["probabilities"].tensor_shape.dim[1:2])[0].size == 10


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": {"images": [[[0.0] * 28] * 28, [[0.0] * 27] * 28]}},  # ragged: no shape at all
        {"instances": [[[0.0] * 28] * 28], "inputs": []},
    ],
)
def test_rest_malformed_tensors_are_400_json(server, body):
    answer = requests.post(server.model_url(":predict"), json=body, timeout=10)
    assert answer.status_code == 400
    assert "Traceback" not in answer.json()["error"]
