"""mnist_common.tensor_proto: the one TensorProto decoder, shared by the web UI's client and the
stand-in (each wraps its errors; see tests/web_ui and tests/tf_serving for those)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mnist_common import tensor_proto


@pytest.fixture(scope="module")
def tensor_pb2():
    from tensorflow.core.framework import tensor_pb2  # the message class only; decode never imports TF

    return tensor_pb2


def shaped(tensor_pb2, dtype, shape, **values):
    proto = tensor_pb2.TensorProto(dtype=dtype, **values)
    for size in shape:
        proto.tensor_shape.dim.add().size = size
    return proto


def test_content_typed_fields_and_fill(tensor_pb2):
    content = shaped(tensor_pb2, tensor_proto.DT_FLOAT, [2, 2], tensor_content=np.arange(4, dtype="<f4").tobytes())
    assert tensor_proto.decode(content).tolist() == [[0, 1], [2, 3]]
    assert tensor_proto.decode(shaped(tensor_pb2, tensor_proto.DT_INT64, [2], int64_val=[7, 8])).tolist() == [7, 8]
    assert tensor_proto.decode(shaped(tensor_pb2, tensor_proto.DT_UINT8, [3], int_val=[5])).tolist() == [5, 5, 5]
    scalar = tensor_proto.decode(shaped(tensor_pb2, tensor_proto.DT_BOOL, [], bool_val=[True]))
    assert scalar.shape == () and bool(scalar)


@pytest.mark.parametrize(
    "dtype, shape, values, reason",
    [
        (8, [1], {}, "unsupported dtype DT_COMPLEX64"),
        (tensor_proto.DT_FLOAT, [-1], {}, "negative dimension"),
        (tensor_proto.DT_STRING, [1], {"tensor_content": b"ab"}, "cannot use tensor_content"),
        (tensor_proto.DT_FLOAT, [2, 3], {"float_val": [1.0, 2.0]}, "needs 6 values but the proto has 2"),
        (tensor_proto.DT_FLOAT, [10**9], {"float_val": [1.0]}, "needs 1000000000 values"),  # no 4 GB fill
    ],
)
def test_malformed_tensors_say_why(tensor_pb2, dtype, shape, values, reason):
    with pytest.raises(tensor_proto.TensorDecodeError, match=reason):
        tensor_proto.decode(shaped(tensor_pb2, dtype, shape, **values))


def test_importing_the_decoder_does_not_import_tensorflow():
    code = "import sys, mnist_common.tensor_proto, mnist_common.serving_client; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
