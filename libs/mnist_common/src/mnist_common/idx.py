"""Reading and writing MNIST's IDX files (optionally gzip-compressed), strictly.

The format: a 4-byte magic (two zero bytes, a dtype code, the number of dimensions), one
big-endian uint32 per dimension, then the data in C order. MNIST uses dtype 0x08 (uint8),
3 dimensions for images and 1 for labels.

Every malformed file (bad magic, truncated data, trailing bytes, broken gzip) raises
IdxFormatError naming the file: a short read is never silently accepted.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib

import numpy as np

from mnist_common import storage

# dtype codes of the IDX format
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {np.dtype(np.uint8): 0x08}


class IdxFormatError(ValueError):
    """A file is not a well-formed IDX file, or not the one expected."""


def encode(array: np.ndarray) -> bytes:
    """Return the uncompressed IDX bytes of a uint8 array."""
    array = np.ascontiguousarray(array)
    if array.dtype not in _CODES:
        raise TypeError(f"IDX writing supports uint8 only, got {array.dtype}")
    header = struct.pack(">BBBB", 0, 0, _CODES[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def decode(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse uncompressed IDX bytes; `name` is used in error messages."""
    if len(data) < 4:
        raise IdxFormatError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    zero1, zero2, code, ndim = struct.unpack(">BBBB", data[:4])
    if zero1 != 0 or zero2 != 0 or code not in _DTYPES or ndim == 0:
        raise IdxFormatError(f"{name}: bad magic number 0x{data[:4].hex()} (not an IDX file)")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IdxFormatError(f"{name}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = _DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_size
    if actual < expected:
        raise IdxFormatError(
            f"{name}: truncated: header promises shape {list(shape)} ({expected} bytes), file holds {actual}"
        )
    if actual > expected:
        raise IdxFormatError(f"{name}: {actual - expected} unexpected trailing bytes after shape {list(shape)}")
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read(path: str) -> np.ndarray:
    """Read an IDX file (gzip-compressed when the name ends in .gz) from a path or URI."""
    try:
        raw = storage.read_bytes(path)
    except FileNotFoundError:
        raise IdxFormatError(f"{path}: no such file") from None
    if path.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise IdxFormatError(f"{path}: corrupt or truncated gzip data ({error})") from None
    return decode(raw, name=path)


def write(path: str, array: np.ndarray) -> None:
    """Write an IDX file atomically (gzip-compressed when the name ends in .gz).

    mtime=0 keeps the bytes, and so the sha256, identical across runs.
    """
    data = encode(array)
    if path.endswith(".gz"):
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz:
            gz.write(data)
        data = buffer.getvalue()
    storage.write_bytes_atomic(path, data)
