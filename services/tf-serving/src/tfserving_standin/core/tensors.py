"""TensorProto <-> numpy without TensorFlow's per-call Python overhead.

Responses fill the typed *_val fields (float_val, int64_val, ...) as TF Serving's Predict does
(AsProtoField). Requests are decoded by mnist_common.tensor_proto, the decoder the web UI's client
uses too, from either tensor_content or the typed fields, as clients send both.
"""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from mnist_common import tensor_proto
from tfserving_standin.core.errors import invalid_argument

# numpy dtype -> DataType enum, for responses.
_BY_NUMPY = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
    np.dtype(object): types_pb2.DT_STRING,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
}


def numpy_dtype(dtype_enum: int) -> np.dtype:
    return tensor_proto.DTYPES[dtype_enum][0]


def dtype_name(dtype_enum: int) -> str:
    entry = tensor_proto.DTYPES.get(dtype_enum)
    return entry[2] if entry else types_pb2.DataType.Name(dtype_enum)


def supported(dtype_enum: int) -> bool:
    return dtype_enum in tensor_proto.DTYPES


def to_numpy(proto: tensor_pb2.TensorProto, name: str) -> np.ndarray:
    """Decode a request TensorProto; malformed ones are INVALID_ARGUMENT like TF's own check."""
    try:
        return tensor_proto.decode(proto)
    except tensor_proto.TensorDecodeError as error:
        raise invalid_argument(f"Input {name}: {error}") from None


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Encode a response tensor into the typed value field, as TF Serving's Predict does."""
    dtype_enum = _BY_NUMPY.get(array.dtype)
    if dtype_enum is None:
        raise TypeError(f"unsupported output dtype {array.dtype}")
    proto = tensor_pb2.TensorProto(
        dtype=dtype_enum,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape]
        ),
    )
    getattr(proto, tensor_proto.DTYPES[dtype_enum][1]).extend(array.ravel().tolist())
    return proto
