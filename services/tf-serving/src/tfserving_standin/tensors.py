"""TensorProto <-> numpy without TensorFlow's per-call Python overhead.

Responses fill the typed *_val fields (float_val, int64_val, ...) as TF Serving's Predict does
(AsProtoField); requests are read from either tensor_content or the typed fields, as clients send
both (tf.make_tensor_proto uses tensor_content for numeric arrays).
"""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from tfserving_standin.errors import invalid_argument

# DataType enum -> (numpy dtype, TensorProto field holding the values, TF's name for messages)
_DTYPES = {
    types_pb2.DT_FLOAT: (np.dtype(np.float32), "float_val", "float"),
    types_pb2.DT_DOUBLE: (np.dtype(np.float64), "double_val", "double"),
    types_pb2.DT_INT32: (np.dtype(np.int32), "int_val", "int32"),
    types_pb2.DT_INT16: (np.dtype(np.int16), "int_val", "int16"),
    types_pb2.DT_INT8: (np.dtype(np.int8), "int_val", "int8"),
    types_pb2.DT_UINT8: (np.dtype(np.uint8), "int_val", "uint8"),
    types_pb2.DT_INT64: (np.dtype(np.int64), "int64_val", "int64"),
    types_pb2.DT_BOOL: (np.dtype(np.bool_), "bool_val", "bool"),
    types_pb2.DT_STRING: (np.dtype(object), "string_val", "string"),
}
_BY_NUMPY = {np.dtype(np.float32): types_pb2.DT_FLOAT, np.dtype(np.float64): types_pb2.DT_DOUBLE,
             np.dtype(np.int32): types_pb2.DT_INT32, np.dtype(np.int64): types_pb2.DT_INT64,
             np.dtype(np.bool_): types_pb2.DT_BOOL, np.dtype(object): types_pb2.DT_STRING,
             np.dtype(np.uint8): types_pb2.DT_UINT8}


_MAX_FILLED_ELEMENTS = 1 << 22


def numpy_dtype(dtype_enum: int) -> np.dtype:
    return _DTYPES[dtype_enum][0]


def dtype_name(dtype_enum: int) -> str:
    entry = _DTYPES.get(dtype_enum)
    return entry[2] if entry else types_pb2.DataType.Name(dtype_enum)


def supported(dtype_enum: int) -> bool:
    return dtype_enum in _DTYPES


def to_numpy(proto: tensor_pb2.TensorProto, name: str) -> np.ndarray:
    """Decode a request TensorProto; malformed ones are INVALID_ARGUMENT like TF's own check."""
    if proto.dtype not in _DTYPES:
        raise invalid_argument(f"Input {name}: unsupported dtype {types_pb2.DataType.Name(proto.dtype)}")
    dtype, field, _ = _DTYPES[proto.dtype]
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise invalid_argument(f"Input {name}: tensor_shape has a negative dimension")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if proto.tensor_content:
        if proto.dtype == types_pb2.DT_STRING:
            raise invalid_argument(f"Input {name}: string tensors cannot use tensor_content")
        values = np.frombuffer(proto.tensor_content, dtype=dtype)
    else:
        raw = getattr(proto, field)
        if proto.dtype == types_pb2.DT_STRING:
            values = np.empty(len(raw), dtype=object)
            values[:] = list(raw)
        else:
            values = np.asarray(raw, dtype=dtype)
        # TF fills a tensor from a single repeated value (make_tensor_proto of a constant);
        # bounded, so a tiny message cannot ask for gigabytes.
        if len(values) == 1 and 1 < count <= _MAX_FILLED_ELEMENTS:
            values = np.full(count, values[0], dtype=dtype)
    if values.size != count:
        raise invalid_argument(
            f"Input {name}: tensor_shape {list(shape)} needs {count} values but the proto has {values.size}"
        )
    return values.reshape(shape)


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
    getattr(proto, _DTYPES[dtype_enum][1]).extend(array.ravel().tolist())
    return proto
