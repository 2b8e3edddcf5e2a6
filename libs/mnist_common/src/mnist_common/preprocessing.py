"""Turn an arbitrary picture of a digit into an MNIST-style 28x28 image.

MNIST's digits were made by (LeCun et al.): size-normalising each digit to fit a 20x20 box while
keeping its aspect ratio (anti-aliased, so grey levels appear), then placing it in a 28x28 field
so that its centre of mass sits at the field's centre. Ink is bright (1.0) on a black (0.0)
background. A model trained on MNIST only sees digits like that, so a drawing or a photo has to
go through the same steps before it is predicted:

    decode_image(bytes)   PNG/JPEG -> grey float [H, W] in [0, 1], ink bright
    to_mnist(grey)        crop to the ink, scale into 20x20, centre by centre of mass in 28x28
    preprocess_image_bytes(bytes) = both

Decoding refuses what is not a PNG or JPEG (NotAnImageError), and, from the header before any
pixel is decompressed (ImageTooLargeError), pictures with more pixels than a limit, a side longer
than MAX_SIDE or more than MAX_DECODED_BYTES once decoded: a small "decompression bomb" file
cannot make the process allocate gigabytes. The side bound matters as much as the area: a
16,777,216 x 1 picture is within the area, and scaling it into the 20-pixel box would take a
resampling kernel of a gigabyte. Before Pillow reads anything, pictures whose structure implies
more decoding work than their size (a progressive JPEG of thousands of scans, a PNG of millions of
chunks) are refused too (ImageTooComplexError, mnist_common.decode_work). Accepted pictures larger than WORKING_SIDE are reduced (box
filter, by an integer factor) right after decoding, so the float steps run on at most
WORKING_SIDE x WORKING_SIDE pixels whatever the upload's size.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

from mnist_common.decode_work import DecodeWorkError, check_decode_work

MNIST_SIZE = 28
DIGIT_BOX = 20
ACCEPTED_FORMATS = ("PNG", "JPEG")
# 4096 x 4096: far more than any phone photo needs for a single digit, 16 M grey pixels at most.
DEFAULT_MAX_PIXELS = 4096 * 4096
# The longest side accepted (4096 x 4096 is also the area cap).
MAX_SIDE = 4096
# What decoding may allocate for the picture itself: 4096 x 4096 at Pillow's 4 bytes a pixel (RGB,
# RGBA and CMYK are stored in 4 bytes a pixel; L and P in 1; 16-bit modes in 2, I and F in 4).
MAX_DECODED_BYTES = 64 << 20
# The float steps (flattening, inversion, cropping) run on pictures no larger than this a side:
# 20x20 is all a digit ends up as, and a 1024-pixel working copy keeps every stroke.
WORKING_SIDE = 1024
_BYTES_PER_PIXEL = {
    "1": 1,
    "L": 1,
    "P": 1,
    "LA": 4,
    "PA": 4,
    "RGB": 4,
    "RGBA": 4,
    "RGBX": 4,
    "CMYK": 4,
    "YCbCr": 4,
    "LAB": 4,
    "HSV": 4,
    "I": 4,
    "F": 4,
    "I;16": 2,
    "I;16B": 2,
    "I;16L": 2,
}
# Grey levels below this (after inversion to bright ink) count as background when cropping:
# JPEG noise and paper texture stay out of the bounding box.
INK_THRESHOLD = 0.2


class ImageError(ValueError):
    """The bytes cannot be turned into a digit image; the message says why."""


class NotAnImageError(ImageError):
    """The bytes are not a readable PNG or JPEG."""


class ImageTooLargeError(ImageError):
    """The picture has more pixels than the decoder is allowed to allocate."""


class ImageTooComplexError(ImageTooLargeError):
    """The picture's structure (JPEG scans or markers, PNG chunks) implies too much decoding work."""


class EmptyImageError(ImageError):
    """The picture holds no ink: nothing to recognise."""


# What Pillow raises for truncated or corrupt data varies by codec; a header of unusual sizes has
# made it divide by zero (ArithmeticError) and index past a table (IndexError) before.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, ArithmeticError, IndexError)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode PNG or JPEG bytes into grey float32 [H, W] in [0, 1] with bright ink.

    Transparent areas count as background (a canvas exports untouched pixels as transparent).
    Light backgrounds (dark ink on paper) are inverted so the ink is bright like MNIST's.
    """
    if not data:
        raise NotAnImageError("the image is empty (0 bytes)")
    try:
        check_decode_work(data)  # before Pillow reads a single marker (mnist_common.decode_work)
    except DecodeWorkError as error:
        raise ImageTooComplexError(str(error)) from None
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.UnidentifiedImageError:
        raise NotAnImageError("not a PNG or JPEG image") from None
    except Image.DecompressionBombError:
        # Pillow's own, much higher, limit: its message would quote a cap that is not ours.
        raise ImageTooLargeError(_too_large(max_pixels)) from None
    except _DECODE_ERRORS:
        raise NotAnImageError("the image is truncated or corrupt") from None
    # Image.open only read the header: check the size before any pixel is decompressed.
    _check_size(image, max_pixels)
    try:
        image = _reduce_to_working_size(image)
        image = ImageOps.exif_transpose(image)  # photos taken sideways
        grey = _flatten_to_grey(image)
    except Image.DecompressionBombError:
        raise ImageTooLargeError(_too_large(max_pixels)) from None
    except _DECODE_ERRORS:
        raise NotAnImageError("the image is truncated or corrupt") from None
    if _background_level(grey) > 0.5:
        grey = 1.0 - grey
    return grey


def _too_large(max_pixels: int) -> str:
    return f"the image is too large: at most {max_pixels} pixels and {MAX_SIDE} pixels a side are accepted"


def _check_size(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    decoded = width * height * _BYTES_PER_PIXEL.get(image.mode, 8)
    if width * height > max_pixels or max(width, height) > MAX_SIDE or decoded > MAX_DECODED_BYTES:
        raise ImageTooLargeError(
            f"the image is {width}x{height} pixels; at most {max_pixels} pixels and {MAX_SIDE} pixels "
            "a side are accepted"
        )


def _reduce_to_working_size(image: Image.Image) -> Image.Image:
    """Decode, then shrink by an integer factor to at most WORKING_SIDE a side. A JPEG is decoded
    at the reduced scale directly (its DCT allows 1/2, 1/4, 1/8), never at full size."""
    factor = -(-max(image.size) // WORKING_SIDE)  # ceiling
    if factor > 1 and image.format == "JPEG":
        # At least a pixel a side: a 4096x1 picture asked for 1024x0 and Pillow divided by it.
        image.draft(image.mode, (max(1, image.size[0] // factor), max(1, image.size[1] // factor)))
    image.load()
    factor = -(-max(image.size) // WORKING_SIDE)
    if factor == 1:
        return image
    if image.mode not in _REDUCIBLE_MODES:  # palette, 1-bit, 16-bit: what flattening would make of them
        image = image.convert("RGBA" if _has_alpha(image) else "L")
    return image.reduce(factor)


_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "I", "F")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _flatten_to_grey(image: Image.Image) -> np.ndarray:
    """Grey float32 [H, W] in [0, 1]; transparent pixels take the opposite of the ink colour."""
    if not _has_alpha(image):
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
