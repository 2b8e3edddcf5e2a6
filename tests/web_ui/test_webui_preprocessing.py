"""mnist_common.preprocessing: pictures of digits become MNIST-style 28x28 images."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mnist_common import preprocessing as pp
from mnist_common.dataset import load_split
from tests.web_ui.drawing import draw_seven, encode

FIELD_CENTRE = 13.5  # centre of a 28-pixel axis, pixel centres at 0..27


def ink_box(image: np.ndarray, threshold: float = 0.1) -> tuple[int, int]:
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_shifted_scaled_digit_comes_out_centred_in_a_20_pixel_box():
    # The same "7" (same proportions), small in a corner of one picture, 2.5x larger elsewhere in another.
    small = pp.preprocess_image_bytes(encode(draw_seven((400, 300), (20, 20, 80, 110), width=8)))
    large = pp.preprocess_image_bytes(encode(draw_seven((300, 600), (120, 200, 270, 425), width=20)))
    for image in (small, large):
        assert image.shape == (28, 28) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert max(ink_box(image)) in (19, 20, 21)  # scaled so the longer side fills 20 pixels
        row, col = pp.centre_of_mass(image)
        assert abs(row - FIELD_CENTRE) <= 0.75 and abs(col - FIELD_CENTRE) <= 0.75
        assert image[:2].max() < 0.05  # the heavy top bar pulls the mass up: the margin is on top
    # Position and scale are gone: both pictures give nearly the same digit.
    similarity = np.corrcoef(small.ravel(), large.ravel())[0, 1]
    assert similarity > 0.85


def test_a_real_mnist_digit_moved_and_enlarged_is_restored(data_dir):
    digit = load_split(data_dir, "test", limit=1).as_float()[0]
    # Enlarge 5x into the bottom-right of a black 300x300 picture, ink bright as in MNIST.
    big = Image.fromarray((digit * 255).astype(np.uint8)).resize((140, 140), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (300, 300), 0)
    canvas.paste(big, (150, 140))
    restored = pp.preprocess_image_bytes(encode(canvas))
    assert np.corrcoef(digit.ravel(), restored.ravel())[0, 1] > 0.8
    row, col = pp.centre_of_mass(restored)
    original_row, original_col = pp.centre_of_mass(digit)
    assert abs(row - original_row) <= 1.0 and abs(col - original_col) <= 1.0


def test_aspect_ratio_is_kept_for_a_thin_one():
    image = Image.new("L", (200, 200), 255)
    image.paste(0, (95, 20, 105, 180))  # a vertical bar: 10 wide, 160 tall
    result = pp.preprocess_image_bytes(encode(image))
    height, width = ink_box(result)
    assert height == 20 and width <= 3


def test_light_background_is_inverted_and_dark_background_is_not():
    dark_on_light = pp.decode_image(encode(draw_seven(ink=0, paper=255)))
    light_on_dark = pp.decode_image(encode(draw_seven(ink=255, paper=0)))
    for grey in (dark_on_light, light_on_dark):
        assert grey[0, 0] == pytest.approx(0.0)  # background black
        assert grey.max() == pytest.approx(1.0)  # ink bright
    assert np.allclose(dark_on_light, light_on_dark)


def test_transparent_background_counts_as_background():
    # A canvas export: black strokes on fully transparent pixels.
    rgba = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (120, 40, 150, 240))
    grey = pp.decode_image(encode(rgba))
    assert grey[0, 0] == pytest.approx(0.0)
    assert grey[100, 130] == pytest.approx(1.0)


def test_jpeg_with_noise_is_accepted():
    rng = np.random.default_rng(0)
    picture = np.asarray(draw_seven(), dtype=np.float32)
    picture = np.clip(picture + rng.normal(0, 12, picture.shape), 0, 255).astype(np.uint8)
    result = pp.preprocess_image_bytes(encode(Image.fromarray(picture), "JPEG"))
    row, col = pp.centre_of_mass(result)
    assert abs(row - FIELD_CENTRE) <= 1.0 and abs(col - FIELD_CENTRE) <= 1.0
    assert max(ink_box(result, threshold=0.3)) in (19, 20, 21)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, encode(draw_seven())[:200]],
    ids=["empty", "text", "broken-png-header", "truncated-png"],
)
def test_non_images_raise_not_an_image(data):
    with pytest.raises(pp.NotAnImageError):
        pp.preprocess_image_bytes(data)


def test_other_formats_are_refused():
    with pytest.raises(pp.NotAnImageError, match="PNG or JPEG"):
        pp.decode_image(encode(draw_seven(), "GIF"))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels; the data never comes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding():
    # 40000 x 40000 grey pixels would be 1.6 GB once decoded; refused from the header alone.
    with pytest.raises(pp.ImageTooLargeError, match="pixels"):
        pp.decode_image(_png_header_only(40000, 40000))
    # A real, tiny file of a large blank picture: compresses to a few KB, decodes to 25 MB.
    bomb = encode(Image.new("L", (5000, 5000), 255))
    assert len(bomb) < 100_000
    with pytest.raises(pp.ImageTooLargeError):
        pp.decode_image(bomb)
    with pytest.raises(pp.ImageTooLargeError):
        pp.decode_image(encode(draw_seven()), max_pixels=1000)


def test_a_blank_picture_has_no_digit():
    with pytest.raises(pp.EmptyImageError):
        pp.preprocess_image_bytes(encode(Image.new("L", (100, 100), 255)))


def test_to_mnist_refuses_non_2d_input():
    with pytest.raises(pp.ImageError):
        pp.to_mnist(np.zeros((3, 28, 28)))


def test_a_digit_touching_the_border_still_fits():
    # Ink right up to the edges of the picture: the background is judged by the border median.
    image = Image.new("L", (60, 60), 255)
    image.paste(0, (0, 0, 60, 8))
    image.paste(0, (26, 0, 34, 60))
    result = pp.preprocess_image_bytes(encode(image))
    assert max(ink_box(result)) in (19, 20, 21)
    row, col = pp.centre_of_mass(result)
    assert abs(col - FIELD_CENTRE) <= 0.75 and abs(row - FIELD_CENTRE) <= 0.75


def test_pillow_save_roundtrip_helper_is_lossless():
    # Guards the helper the other tests rely on.
    image = draw_seven()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode(image)))), np.asarray(image))
