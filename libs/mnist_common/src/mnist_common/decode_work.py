"""How much work decoding an encoded picture implies, read from its structure before any decoding.

A header's width and height bound what a decode allocates, not what it costs. A progressive JPEG
is decoded scan by scan, each scan a pass over the whole picture's coefficients; the format puts
no limit on the number of scans and libjpeg follows every one. A 120 KB 2048x2048 JPEG whose
last refinement scan is repeated 2,400 times took 7.5 s of one core to decode (about 3 ms a scan),
and a body at the 4 MiB limit held minutes. Every marker segment before the first scan is read by
Pillow in Python, and every PNG chunk too, so a file of millions of tiny segments costs seconds in
the same way. A digit needs none of that: libjpeg's own progressive script has 10 scans for a
colour picture and 6 for a grey one, and a PNG encoder writes a handful of chunks and its pixels
in IDAT chunks of 8 KiB or more.

check_decode_work(data) walks the markers or chunks (each step a jump by a declared length or a
search at C speed, stopping at the first bound passed) and raises DecodeWorkError for pictures
whose structure implies more work than the bounds below. It says nothing about other formats:
the decoders refuse them. The exported model's predict_image_bytes signature applies the same
scan bounds with TensorFlow ops (mnist_exporter.saved_model), so the real TF Serving refuses
what the web UI and the stand-in refuse.
"""

from __future__ import annotations

import re
import struct

# Scans in one JPEG: libjpeg's simple progression has 10 (colour) or 6 (grey), a baseline JPEG
# one per component at most; 32 leaves room for encoders' own scripts (mozjpeg's, say).
MAX_JPEG_SCANS = 32
# Scans times the pixels the frame declares: the work of a progressive decode. A 4096x4096 picture
# (the pixel cap) with libjpeg's 10 scans of a colour progressive JPEG, or a 2048x2048 one with all
# 32: about half a second of one core at most.
MAX_JPEG_SCAN_PIXELS = 10 * 4096 * 4096
# Marker segments in one JPEG (restart markers, which sit inside a scan's data, are not counted):
# a camera's photo has 20-40 (APPn for Exif, ICC and XMP, quantisation and Huffman tables, ...).
MAX_JPEG_MARKERS = 512
# Chunks in one PNG: IHDR, PLTE, a few ancillary ones and the IDATs, which encoders write in
# 8-64 KiB pieces (a 4 MiB picture in 8 KiB IDATs is 512 chunks).
MAX_PNG_CHUNKS = 4096

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SOI, _EOI, _SOS, _TEM = 0xD8, 0xD9, 0xDA, 0x01
_STANDALONE = frozenset({_TEM, _SOI, *range(0xD0, 0xD8)})  # markers without a length field
_FRAME_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Between segments a marker is 0xFF (any number of fill bytes) and a code other than 0x00.
_NEXT_MARKER = re.compile(rb"\xff+([^\x00\xff])")
# Inside a scan's entropy-coded data 0xFF is followed by a stuffed 0x00 or is a restart marker
# (0xD0-0xD7); anything else ends the scan.
_END_OF_SCAN = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")


class DecodeWorkError(ValueError):
    """The picture's structure implies more decoding work than a digit needs; the message says why."""


def check_decode_work(data: bytes) -> None:
    """Raise DecodeWorkError when a JPEG's scans or markers, or a PNG's chunks, pass the bounds."""
    if data.startswith(b"\xff\xd8"):
        _check_jpeg(data)
    elif data.startswith(_PNG_SIGNATURE):
        _check_png(data)


def _check_jpeg(data: bytes) -> None:
    pixels = 0
    scans = markers = 0
    position, in_scan = 2, False
    while True:
        found = (_END_OF_SCAN if in_scan else _NEXT_MARKER).search(data, position)
        if found is None:
            return  # truncated: the decoder says so, for what reading it costs
        code, position = found.group(1)[0], found.end()
        markers += 1
        if markers > MAX_JPEG_MARKERS:
            raise DecodeWorkError(
                f"the JPEG has more than {MAX_JPEG_MARKERS} marker segments; a digit needs a few dozen at most"
            )
        if code == _EOI:
            return
        in_scan = False
        if code in _STANDALONE:
            continue
        if position + 2 > len(data):
            return
        (length,) = struct.unpack_from(">H", data, position)
        if code in _FRAME_MARKERS and position + 7 <= len(data):
            height, width = struct.unpack_from(">HH", data, position + 3)
            pixels = max(pixels, width * height)
        elif code == _SOS:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise DecodeWorkError(
                    f"the JPEG has more than {MAX_JPEG_SCANS} scans; a digit needs at most {MAX_JPEG_SCANS}"
                )
            if scans * pixels > MAX_JPEG_SCAN_PIXELS:
                raise DecodeWorkError(
                    f"the JPEG's {scans} scans of {pixels} pixels each pass the decoding budget of "
                    f"{MAX_JPEG_SCAN_PIXELS} pixels in all scans; send fewer scans or fewer pixels"
                )
            in_scan = True
        position += max(length, 2)


def _check_png(data: bytes) -> None:
    position, chunks = len(_PNG_SIGNATURE), 0
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise DecodeWorkError(f"the PNG has more than {MAX_PNG_CHUNKS} chunks; a digit needs a few dozen at most")
        if kind == b"IEND":
            return
        position += 12 + length  # length, type, data, CRC
