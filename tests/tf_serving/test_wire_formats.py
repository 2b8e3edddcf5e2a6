"""TensorProto and JSON conversions on their own (no server): the corners the contract suite
does not reach."""

from __future__ import annotations

import grpc
import numpy as np
import orjson
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from tfserving_standin.core import tensors
from tfserving_standin.core.errors import ServingError
from tfserving_standin.core.servable import TensorSpec
from tfserving_standin.rest_api import json_codec as rest_json

IMAGES = {"images": TensorSpec("images", types_pb2.DT_FLOAT, (None, 28, 28))}
BYTES = {"image_bytes": TensorSpec("image_bytes", types_pb2.DT_STRING, (None,))}


def shaped(dtype, dims, **values):
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, **values)


def test_tensor_proto_round_trip_uses_typed_fields():
    array = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    proto = tensors.to_proto(array)
    assert proto.dtype == types_pb2.DT_FLOAT and len(proto.float_val) == 6 and not proto.tensor_content
    np.testing.assert_array_equal(tensors.to_numpy(proto, "x"), array)
    content = shaped(types_pb2.DT_FLOAT, [2, 3], tensor_content=array.tobytes())
    np.testing.assert_array_equal(tensors.to_numpy(content, "x"), array)
    strings = tensors.to_numpy(shaped(types_pb2.DT_STRING, [2], string_val=[b"a", b"b"]), "s")
    assert strings.dtype == object and strings.tolist() == [b"a", b"b"]


def test_tensor_proto_errors():
    with pytest.raises(ServingError, match="needs 6 values"):
        tensors.to_numpy(shaped(types_pb2.DT_FLOAT, [2, 3], float_val=[1.0, 2.0]), "x")
    with pytest.raises(ServingError, match="needs 1000000000 values"):  # no 4 GB fill from one value
        tensors.to_numpy(shaped(types_pb2.DT_FLOAT, [10**9], float_val=[1.0]), "x")
    with pytest.raises(ServingError, match="unsupported dtype"):
        tensors.to_numpy(shaped(types_pb2.DT_COMPLEX64, [1]), "x")
    np.testing.assert_array_equal(tensors.to_numpy(shaped(types_pb2.DT_INT64, [3], int64_val=[4]), "x"), [4, 4, 4])


def test_row_and_columnar_bodies_give_the_same_tensor():
    images = np.random.default_rng(0).random((2, 28, 28)).astype(np.float32)
    row_form, row = rest_json.inputs_from_document({"instances": images.tolist()}, IMAGES)
    named_form, named = rest_json.inputs_from_document({"instances": [{"images": i.tolist()} for i in images]}, IMAGES)
    col_form, col = rest_json.inputs_from_document({"inputs": {"images": images.tolist()}}, IMAGES)
    assert (row_form, named_form, col_form) == ("row", "row", "columnar")
    for parsed in (row, named, col):
        assert parsed["images"].dtype == np.float32
        np.testing.assert_array_equal(parsed["images"], images)


def test_b64_values_and_plain_strings():
    _, parsed = rest_json.inputs_from_document({"instances": [{"b64": "aGk="}, "plain"]}, BYTES)
    assert parsed["image_bytes"].tolist() == [b"hi", b"plain"]
    with pytest.raises(ServingError, match="base64"):
        rest_json.inputs_from_document({"instances": [{"b64": "!!"}]}, BYTES)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"instances": [[[1.0] * 28] * 28, [[1.0] * 27] * 28]}, "unequal length"),
        ({"instances": [[True]]}, "not of expected type: float"),
        ({"instances": [[None]]}, "not of expected type: float"),
        ({"instances": [[1e300]]}, "without loss of precision"),
        ({"instances": [{"images": [1.0], "extra": [1.0]}]}, "keys"),
        ({"inputs": {"pixels": [1.0]}}, "Missing named input: images"),
    ],
)
def test_bad_json_tensors(document, fragment):
    with pytest.raises(ServingError) as caught:
        rest_json.inputs_from_document(document, IMAGES)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT and fragment in caught.value.message


@pytest.mark.parametrize("spec", [IMAGES, BYTES], ids=["float", "string"])
def test_deeply_nested_bodies_are_bad_requests(spec):
    deep = b'{"instances": ' + b"[" * 900 + b"1.0" + b"]" * 900 + b"}"
    with pytest.raises(ServingError) as caught:
        rest_json.inputs_from_document(rest_json.parse_body(deep), spec)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    too_deep = b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(ServingError, match="JSON Parse error"):
        rest_json.parse_body(too_deep)


def test_nan_literals_parse_so_the_input_check_can_name_them():
    assert np.isnan(rest_json.parse_body(b'{"instances": [NaN]}')["instances"][0])


def test_response_formats():
    outputs = {"probabilities": np.array([[0.25, 0.75], [0.5, 0.5]], np.float32), "classes": np.array([1, 0])}
    assert orjson.loads(rest_json.predict_response("row", outputs)) == {
        "predictions": [{"probabilities": [0.25, 0.75], "classes": 1}, {"probabilities": [0.5, 0.5], "classes": 0}]
    }
    assert orjson.loads(rest_json.predict_response("columnar", outputs)) == {
        "outputs": {"probabilities": [[0.25, 0.75], [0.5, 0.5]], "classes": [1, 0]}
    }
    assert orjson.loads(rest_json.predict_response("row", {"y": np.array([1.5, 2.5], np.float32)})) == {
        "predictions": [1.5, 2.5]
    }
