"""TensorProto -> numpy: the one decoder for both ends of the wire. The web UI's client reads the
model server's answers with it; the TF Serving stand-in reads requests with it.

Works on the protobuf message alone, without importing TensorFlow (seconds, and memory, in the
web UI): dtypes are the enum numbers of tensorflow/core/framework/types.proto. Values come from
tensor_content (little-endian bytes, what tf.make_tensor_proto writes for numeric arrays) or
from the typed *_val field, where one value fills a tensor of any shape, as in TensorFlow.
"""

from __future__ import annotations

import numpy as np

DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING, DT_INT64, DT_BOOL = 1, 2, 3, 4, 5, 6, 7, 9, 10

# enum -> (numpy dtype, TensorProto field holding the values, TensorFlow's name for messages)
DTYPES: dict[int, tuple[np.dtype, str, str]] = {
    DT_FLOAT: (np.dtype("<f4"), "float_val", "float"),
    DT_DOUBLE: (np.dtype("<f8"), "double_val", "double"),
    DT_INT32: (np.dtype("<i4"), "int_val", "int32"),
    DT_INT16: (np.dtype("<i2"), "int_val", "int16"),
    DT_INT8: (np.dtype("i1"), "int_val", "int8"),
    DT_UINT8: (np.dtype("u1"), "int_val", "uint8"),
    DT_INT64: (np.dtype("<i8"), "int64_val", "int64"),
    DT_BOOL: (np.dtype(np.bool_), "bool_val", "bool"),
    DT_STRING: (np.dtype(object), "string_val", "string"),
}

# The most elements one repeated value may fill: a tiny message must not ask for gigabytes.
MAX_FILLED_ELEMENTS = 1 << 22
# TensorFlow's own bound on a shape's element count (TensorShape keeps it in an int64).
MAX_ELEMENTS = (1 << 63) - 1
# Dimensions a tensor may have here: numpy's limit is 64 (TensorFlow's 254), and no signature of a
# model like this one has more than a handful; 32 holds for numpy 1 too.
MAX_RANK = 32


class TensorDecodeError(ValueError):
    """A TensorProto that does not describe a tensor; the message says why."""


def dtype_enum_name(proto) -> str:
    """DT_FLOAT, DT_COMPLEX64, ...: the enum's name from the message's own descriptor."""
    values = proto.DESCRIPTOR.fields_by_name["dtype"].enum_type.values_by_number
    entry = values.get(proto.dtype)
    return entry.name if entry is not None else str(proto.dtype)


def decode(proto) -> np.ndarray:
    """The tensor a TensorProto holds, shaped; TensorDecodeError when it is malformed."""
    if proto.dtype not in DTYPES:
        raise TensorDecodeError(f"unsupported dtype {dtype_enum_name(proto)}")
    dtype, field, _ = DTYPES[proto.dtype]
    if len(proto.tensor_shape.dim) > MAX_RANK:
        raise TensorDecodeError(
            f"tensor_shape has {len(proto.tensor_shape.dim)} dimensions; at most {MAX_RANK} are accepted"
        )
    shape = tuple(int(dim.size) for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise TensorDecodeError(f"tensor_shape {list(shape)} has a negative dimension")
    count = _element_count(shape)
    if proto.tensor_content:
        if proto.dtype == DT_STRING:
            raise TensorDecodeError("string tensors cannot use tensor_content")
        if len(proto.tensor_content) != count * dtype.itemsize:
            # TF Serving's check: the bytes must be exactly the shape's elements, no more, no fewer.
            raise TensorDecodeError(
                f"tensor_content has {len(proto.tensor_content)} bytes but tensor_shape {list(shape)} "
                f"of {dtype.name} needs {count * dtype.itemsize}"
            )
        values = np.frombuffer(proto.tensor_content, dtype=dtype)
    else:
        raw = getattr(proto, field)
        if proto.dtype == DT_STRING:
            values = np.empty(len(raw), dtype=object)
            values[:] = list(raw)
        else:
            values = np.asarray(raw, dtype=dtype)
        if len(values) == 1 and 1 < count <= MAX_FILLED_ELEMENTS:
            values = np.full(count, values[0], dtype=dtype)
    if values.size != count:
        raise TensorDecodeError(f"tensor_shape {list(shape)} needs {count} values but the proto has {values.size}")
    return values.reshape(shape)


def _element_count(shape: tuple[int, ...]) -> int:
    """The shape's element count in Python integers, so a huge shape cannot wrap around to 0."""
    count = 1
    for size in shape:
        count *= size
        if count > MAX_ELEMENTS:
            raise TensorDecodeError(f"tensor_shape {list(shape)} has more elements than a tensor may hold")
    return count
