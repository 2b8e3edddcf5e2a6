"""Turn an arbitrary picture of a digit into an MNIST-style 28x28 image.

MNIST's digits were made by (LeCun et al.): size-normalising each digit to fit a 20x20 box while
keeping its aspect ratio (anti-aliased, so grey levels appear), then placing it in a 28x28 field
so that its centre of mass sits at the field's centre. Ink is bright (1.0) on a black (0.0)
background. A model trained on MNIST only sees digits like that, so a drawing or a photo has to
go through the same steps before it is predicted:

    decode_image(bytes)   PNG/JPEG -> grey float [H, W] in [0, 1], ink bright
    to_mnist(grey)        crop to the ink, scale into 20x20, centre by centre of mass in 28x28
    preprocess_image_bytes(bytes) = both

Decoding refuses what is not a PNG or JPEG (NotAnImageError) and pictures with more pixels than
a limit (ImageTooLargeError) before decompressing them, so a small "decompression bomb" file
cannot make the process allocate gigabytes.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

MNIST_SIZE = 28
DIGIT_BOX = 20
ACCEPTED_FORMATS = ("PNG", "JPEG")
# 4096 x 4096: far more than any phone photo needs for a single digit, 16 M grey pixels at most.
DEFAULT_MAX_PIXELS = 4096 * 4096
# Grey levels below this (after inversion to bright ink) count as background when cropping:
# JPEG noise and paper texture stay out of the bounding box.
INK_THRESHOLD = 0.2


class ImageError(ValueError):
    """The bytes cannot be turned into a digit image; the message says why."""


class NotAnImageError(ImageError):
    """The bytes are not a readable PNG or JPEG."""


class ImageTooLargeError(ImageError):
    """The picture has more pixels than the decoder is allowed to allocate."""


class EmptyImageError(ImageError):
    """The picture holds no ink: nothing to recognise."""


# What Pillow raises for truncated or corrupt data varies by codec.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode PNG or JPEG bytes into grey float32 [H, W] in [0, 1] with bright ink.

    Transparent areas count as background (a canvas exports untouched pixels as transparent).
    Light backgrounds (dark ink on paper) are inverted so the ink is bright like MNIST's.
    """
    if not data:
        raise NotAnImageError("the image is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.UnidentifiedImageError:
        raise NotAnImageError("not a PNG or JPEG image") from None
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(str(error)) from None
    except _DECODE_ERRORS as error:
        raise NotAnImageError(f"unreadable image ({error})") from None
    # Image.open only read the header: check the size before any pixel is decompressed.
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} pixels; at most {max_pixels} pixels are accepted"
        )
    try:
        image.load()
        image = ImageOps.exif_transpose(image)  # photos taken sideways
        grey = _flatten_to_grey(image)
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(str(error)) from None
    except _DECODE_ERRORS as error:
        raise NotAnImageError(f"unreadable image ({error})") from None
    if _background_level(grey) > 0.5:
        grey = 1.0 - grey
    return grey


def _flatten_to_grey(image: Image.Image) -> np.ndarray:
    """Grey float32 [H, W] in [0, 1]; transparent pixels take the opposite of the ink colour."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
    grey = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
    opaque = alpha > 0.5
    # Whatever colour the strokes are, a transparent background must end up as background: put
    # it on the side opposite to the strokes (dark strokes -> white paper, light -> black).
    ink_is_dark = bool(opaque.any()) and float(grey[opaque].mean()) < 0.5
    background = 1.0 if ink_is_dark else 0.0
    return grey * alpha + background * (1.0 - alpha)


def _background_level(grey: np.ndarray) -> float:
    """The typical grey level of the picture's border, where a centred digit has no ink."""
    border = np.concatenate([grey[0, :], grey[-1, :], grey[:, 0], grey[:, -1]])
    return float(np.median(border))


def to_mnist(grey: np.ndarray) -> np.ndarray:
    """MNIST-style float32 [28, 28] in [0, 1] from a grey image with bright ink on black."""
    grey = np.asarray(grey, dtype=np.float32)
    if grey.ndim != 2:
        raise ImageError(f"expected a 2-D grey image, got shape {list(grey.shape)}")
    grey = np.clip(np.nan_to_num(grey, nan=0.0), 0.0, 1.0)
    rows = np.flatnonzero((grey > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((grey > INK_THRESHOLD).any(axis=0))
    if rows.size == 0:
        raise EmptyImageError("the image holds no digit (no ink found)")
    cropped = grey[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    # Stretch the contrast so faint pencil becomes as bright as MNIST's pen strokes.
    cropped = cropped / float(cropped.max())

    height, width = cropped.shape
    scale = DIGIT_BOX / max(height, width)
    new_height = max(1, round(height * scale))
    new_width = max(1, round(width * scale))
    box = Image.fromarray(cropped.astype(np.float32), mode="F").resize(
        (new_width, new_height), Image.Resampling.LANCZOS, reducing_gap=None
    )
    digit = np.clip(np.asarray(box, dtype=np.float32), 0.0, 1.0)

    # Put the box where its centre of mass lands on the field's centre (pixel 13.5 of 0..27),
    # rounded to whole pixels and kept inside the field.
    centre_y, centre_x = _centre_of_mass(digit)
    field_centre = (MNIST_SIZE - 1) / 2
    top = _clamp(round(field_centre - centre_y), 0, MNIST_SIZE - new_height)
    left = _clamp(round(field_centre - centre_x), 0, MNIST_SIZE - new_width)
    field = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    field[top : top + new_height, left : left + new_width] = digit
    return field


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = float(image.sum())
    if total <= 0:
        return (image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2
    ys, xs = np.indices(image.shape)
    return float((ys * image).sum() / total), float((xs * image).sum() / total)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of an image's centre of mass; the geometric centre if it is all zero."""
    return _centre_of_mass(np.asarray(image, dtype=np.float64))


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def preprocess_image_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """PNG or JPEG bytes -> MNIST-style float32 [28, 28] in [0, 1]."""
    return to_mnist(decode_image(data, max_pixels=max_pixels))
