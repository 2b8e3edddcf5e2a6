"""Turning the body of POST /api/v1/predict into a float32 [28, 28] image, or a 4xx reason.

Accepted bodies:
    {"pixels": 28 lists of 28 numbers, or 784 numbers, each in [0, 1]}
    {"image": "<base64 PNG or JPEG>"}   (a data: URI is accepted too)
Anything else is a 400 with a reason; a picture that is not a PNG/JPEG is a 415; a picture with
too many pixels is a 413. NaN and Infinity are refused already by the JSON parser.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import threading

import numpy as np
import orjson

from mnist_common import preprocessing
from mnist_webui.errors import ApiError

PIXELS = 28 * 28


class _NotJsonNumber(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NotJsonNumber(f"{name} is not a number JSON allows")


def parse_json_object(body: bytes) -> dict:
    if not body:
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        # orjson on the hot path: 784 floats parse several times faster than with the standard
        # library, which took a tenth of the web UI's CPU per prediction under load.
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        # The standard library decides what orjson refused: it names NaN and Infinity, and it
        # reads 1e400 as infinity, which the pixel check then refuses with its own reason.
        payload = _parse_with_the_standard_library(body)
    if not isinstance(payload, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return payload


def _parse_with_the_standard_library(body: bytes):
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8 JSON") from None
    # In the API's own words: Python's messages (its recursion limit, its parser's wording) are
    # not part of the interface.
    except RecursionError:
        raise ApiError(400, "the request body is not valid JSON: it nests deeper than the API accepts") from None
    except _NotJsonNumber as error:
        raise ApiError(400, f"the request body is not valid JSON: {error}") from None
    except json.JSONDecodeError as error:
        raise ApiError(400, f"the request body is not valid JSON (line {error.lineno}, column {error.colno})") from None
    except ValueError:
        raise ApiError(400, "the request body is not valid JSON") from None


# bool is an int in Python, and numpy would turn "0.5" into 0.5: only these types are pixels.
_NUMBER_TYPES = frozenset((int, float))


def pixels_to_image(pixels) -> np.ndarray:
    """28x28 nested or 784 flat numbers in [0, 1] -> float32 [28, 28].

    On the hot path of every prediction, so the checks run at C speed: one set of the values'
    types, then numpy for the range (which also refuses infinities).
    """
    if not isinstance(pixels, list):
        raise ApiError(400, "'pixels' must be a list of 784 numbers or 28 lists of 28 numbers")
    if len(pixels) == PIXELS:
        flat = pixels
    elif len(pixels) == 28 and all(type(row) is list and len(row) == 28 for row in pixels):
        flat = list(itertools.chain.from_iterable(pixels))
    else:
        raise ApiError(
            400,
            f"'pixels' must be 784 numbers or 28 lists of 28 numbers, got a list of {len(pixels)}",
        )
    if not set(map(type, flat)) <= _NUMBER_TYPES:
        raise ApiError(400, "every pixel must be a finite number")
    try:
        values = np.asarray(flat, dtype=np.float64)
    except OverflowError:  # an integer too large for a float
        raise ApiError(400, "every pixel must be a finite number") from None
    # One range check on the way in; which reason to give is only worked out for a refusal.
    if not (0.0 <= values.min() and values.max() <= 1.0):
        if not np.isfinite(values).all():  # 1e400 parses as inf
            raise ApiError(400, "every pixel must be a finite number")
        raise ApiError(400, "pixel values must lie in [0, 1]")
    return values.astype(np.float32).reshape(28, 28)


def decode_base64_image(text) -> bytes:
    if not isinstance(text, str) or not text:
        raise ApiError(400, "'image' must be a non-empty base64 string")
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise ApiError(400, "'image' data URI must be base64-encoded")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "'image' is not valid base64") from None


# Pictures decoded at the same time in one worker. A picture at the bounds costs up to ~160 MiB
# while it is decoded (README, "Bounds"); the worker's threads are many because predictions mostly
# wait on the model server, so without this a burst of large uploads would multiply that by
# WEB_THREADS. The others wait here for a slot; drawings and small uploads take milliseconds.
IMAGE_DECODES_AT_ONCE = 2
_decode_slots = threading.BoundedSemaphore(IMAGE_DECODES_AT_ONCE)
# The longest a picture waits for a slot: decodes run in threads, where gunicorn's worker timeout
# never fires, so a request that cannot get a slot in this time is told to retry (503) instead of
# holding its thread. A decode within the bounds (mnist_common.decode_work) takes well under 1 s.
DECODE_SLOT_WAIT_SECONDS = 5.0


def image_to_mnist(data: bytes, max_pixels: int) -> np.ndarray:
    if not _decode_slots.acquire(timeout=DECODE_SLOT_WAIT_SECONDS):
        raise ApiError(503, "too many pictures are being decoded right now; retry shortly, or send pixels")
    try:
        return preprocessing.preprocess_image_bytes(data, max_pixels=max_pixels)
    except preprocessing.ImageTooLargeError as error:
        raise ApiError(413, str(error)) from None
    except preprocessing.NotAnImageError as error:
        raise ApiError(415, f"{error}; send a PNG or JPEG") from None
    except preprocessing.ImageError as error:
        raise ApiError(400, str(error)) from None
    finally:
        _decode_slots.release()


def parse_predict_request(body: bytes, max_pixels: int) -> tuple[np.ndarray, bool]:
    """(image float32 [28, 28], whether it came from an encoded picture)."""
    payload = parse_json_object(body)
    has_pixels, has_image = "pixels" in payload, "image" in payload
    if has_pixels == has_image:
        raise ApiError(400, "send exactly one of 'pixels' or 'image'")
    unknown = set(payload) - {"pixels", "image"}
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
    if has_pixels:
        return pixels_to_image(payload["pixels"]), False
    return image_to_mnist(decode_base64_image(payload["image"]), max_pixels), True
