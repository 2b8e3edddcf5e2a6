"""Pictures whose structure costs far more to decode than their size says (the probe classes of
the decode-work bounds, mnist_common.decode_work), made here from Pillow's own output.

jpeg_scan_bomb: a progressive JPEG whose last scan (an AC refinement pass over the whole picture)
is repeated: libjpeg decodes every repeat, about 3 ms each at 2048x2048, for ~50 bytes each.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def digit_picture(side: int) -> np.ndarray:
    """A white ring on black: ink a digit model sees, compressible but not trivially."""
    ys, xs = np.mgrid[0:side, 0:side]
    radius = np.hypot(ys - side / 2, xs - side / 2)
    return np.where(np.abs(radius - side / 3) < side / 12, 255, 0).astype(np.uint8)


def progressive_jpeg(side: int = 256, mode: str = "L", flat: bool = False) -> bytes:
    picture = np.zeros((side, side), np.uint8) if flat else digit_picture(side)
    buffer = io.BytesIO()
    Image.fromarray(picture).convert(mode).save(buffer, format="JPEG", progressive=True, quality=90)
    return buffer.getvalue()


def jpeg_scan_bomb(side: int = 2048, repeats: int = 2400, mode: str = "L") -> bytes:
    """A valid progressive JPEG with its last scan (and the tables before it) repeated. The picture
    is flat, so each repeat is a few dozen bytes and libjpeg still passes over every block."""
    data = progressive_jpeg(side, mode, flat=True)
    last_scan = data.rfind(b"\xff\xda")
    tables = data.rfind(b"\xff\xc4", 0, last_scan)  # the Huffman table the scan uses, if its own
    start = tables if tables != -1 and data.find(b"\xff\xda", tables, last_scan) == -1 else last_scan
    end = data.rfind(b"\xff\xd9")
    return data[:end] + data[start:end] * repeats + b"\xff\xd9"


def jpeg_marker_flood(count: int = 100_000, side: int = 64) -> bytes:
    """A small baseline JPEG with `count` empty comment segments before its first scan: each
    is 4 bytes, and Pillow reads every one in Python."""
    buffer = io.BytesIO()
    Image.fromarray(digit_picture(side)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def png_chunk_flood(count: int = 200_000, side: int = 64) -> bytes:
    """A small PNG with `count` empty ancillary chunks (private type) before its IDAT."""
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.fromarray(digit_picture(side)).save(buffer, format="PNG")
    data = buffer.getvalue()
    ihdr_end = 8 + 12 + 13
    empty = struct.pack(">I", 0) + b"prVt" + struct.pack(">I", zlib.crc32(b"prVt"))
    return data[:ihdr_end] + empty * count + data[ihdr_end:]
