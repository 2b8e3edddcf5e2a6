"""Cost-based admission for encoded images: a bound on the decode work one request may queue.

A predict_image_bytes request of 64 large PNGs is a few hundred kilobytes on the wire but
seconds of decoding on a batch thread; two such requests took both threads and stalled every
other request for seconds. Each request's cost is the pixels its images declare in their headers
(read here without decoding, as the exported signature's own check does); a request over the
per-request budget is INVALID_ARGUMENT, and one that would take the pixels in flight over the
shared budget is RESOURCE_EXHAUSTED (HTTP 429), so one client's images can hold at most one
batch thread while everyone else's requests keep flowing.

Pixels bound what a decode allocates, not what it costs: a progressive JPEG decodes scan by
scan, and a 120 KB one of 2,400 scans took 7.5 s. check_decode_work refuses, from the bytes'
structure and before anything is queued, images whose scans, markers or chunks pass
mnist_common.decode_work's bounds (the exported signature checks the scans itself too, for the
real TF Serving). What is admitted is decoded on threads of its own with a deadline
(DECODE_DEADLINE_SECONDS; core/manager.py), away from the threads that run pixel predicts.
"""

from __future__ import annotations

import struct

import grpc
import numpy as np

from mnist_common.decode_work import DecodeWorkError, check_decode_work
from tfserving_standin.core.errors import ServingError, invalid_argument

# One image at the exported signature's own cap (4096 x 4096), or 64 images of 512 x 512.
MAX_REQUEST_PIXELS = 4096 * 4096
# A request at the per-request budget, plus room for other clients' small images beside it.
MAX_PIXELS_IN_FLIGHT = MAX_REQUEST_PIXELS + 4 * 1024 * 1024

# How long a request may wait for its images to be decoded and predicted before it is answered
# DEADLINE_EXCEEDED: the largest admitted request (64 PNGs of 500x500, decoded one after another)
# takes about a second on a quiet core and several on a busy one.
DECODE_DEADLINE_SECONDS = 10.0

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def declared_pixels(encoded: bytes) -> int:
    """Width x height from a PNG's IHDR or a JPEG's frame header; the byte count otherwise
    (anything else fails in decoding at once, for about what reading it costs)."""
    if encoded.startswith(_PNG_SIGNATURE) and len(encoded) >= 24:
        width, height = struct.unpack(">II", encoded[16:24])
        return width * height
    if encoded.startswith(b"\xff\xd8"):
        offset = 2
        while offset + 9 <= len(encoded) and encoded[offset] == 0xFF:
            marker = encoded[offset + 1]
            (length,) = struct.unpack(">H", encoded[offset + 2 : offset + 4])
            if marker in _JPEG_FRAME_MARKERS:
                height, width = struct.unpack(">HH", encoded[offset + 5 : offset + 9])
                return width * height
            offset += 2 + length
    return len(encoded)


def _encoded_values(inputs: dict[str, np.ndarray]):
    for array in inputs.values():
        if array.dtype == object:
            for value in array.ravel():
                if isinstance(value, bytes):
                    yield value


def request_cost(inputs: dict[str, np.ndarray]) -> int:
    """The pixels a request's string tensors would decode to (0 for numeric tensors); refuses
    (INVALID_ARGUMENT) an image whose structure implies more decoding work than the bounds."""
    cost = 0
    for index, value in enumerate(_encoded_values(inputs)):
        try:
            check_decode_work(value)
        except DecodeWorkError as error:
            raise invalid_argument(f"image {index}: {error}") from None
        cost += declared_pixels(value)
    return cost


class DecodeBudget:
    """Pixels being decoded right now, across all requests; owned by the event loop thread."""

    def __init__(self, per_request: int = MAX_REQUEST_PIXELS, in_flight: int = MAX_PIXELS_IN_FLIGHT):
        self.per_request = per_request
        self.in_flight = in_flight
        self._used = 0

    def admit(self, cost: int) -> int:
        """Take `cost` pixels or refuse; returns what to give back with release()."""
        if cost > self.per_request:
            raise invalid_argument(
                f"The request's images have {cost} pixels in all; at most {self.per_request} may be "
                "sent in one request: send fewer or smaller images"
            )
        if cost and self._used + cost > self.in_flight:
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "Too many images are being decoded right now; retry shortly or send fewer images",
            )
        self._used += cost
        return cost

    def release(self, cost: int) -> None:
        self._used -= cost
