"""mnist_common.decode_work: pictures whose structure implies more decoding work than a digit
needs are refused before any decoder sees them; ordinary pictures of every kind pass."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mnist_common import decode_work, preprocessing
from tests.support import image_bombs


def _refused(data: bytes) -> str:
    with pytest.raises(decode_work.DecodeWorkError) as raised:
        decode_work.check_decode_work(data)
    return str(raised.value)


@pytest.mark.parametrize("repeats", [27, 300, 2400])
def test_a_progressive_jpeg_of_too_many_scans_is_refused(repeats):
    # 6 scans of a grey progressive JPEG + the repeats: 33 and more.
    assert "scans" in _refused(image_bombs.jpeg_scan_bomb(64, repeats))


def test_scans_times_pixels_is_bounded_too():
    # 4096x4096 with 6 + 5 = 11 scans: under the scan count, over the work budget.
    bomb = image_bombs.jpeg_scan_bomb(4096, 5)
    assert bomb.count(b"\xff\xda") <= decode_work.MAX_JPEG_SCANS
    assert "budget" in _refused(bomb)


def test_scans_are_counted_through_fill_bytes_and_restart_markers():
    data = image_bombs.jpeg_scan_bomb(64, 40)
    # 0xFF fill bytes may precede any marker (ITU T.81 B.1.1.2): each SOS still counts.
    assert "scans" in _refused(data.replace(b"\xff\xda", b"\xff\xff\xff\xda"))


@pytest.mark.parametrize("kind", [b"\xff\xfe", b"\xff\xe1", b"\xff\xdb"])  # COM, APP1, DQT
def test_a_jpeg_of_too_many_marker_segments_is_refused(kind):
    data = image_bombs.jpeg_marker_flood(10, 32)
    flood = data[:2] + (kind + b"\x00\x02") * (decode_work.MAX_JPEG_MARKERS + 1) + data[2:]
    assert "marker" in _refused(flood)


def test_a_png_of_too_many_chunks_is_refused():
    assert "chunks" in _refused(image_bombs.png_chunk_flood(decode_work.MAX_PNG_CHUNKS + 1))


def test_a_png_of_many_tiny_idat_chunks_is_refused():
    picture = io.BytesIO()
    Image.fromarray(image_bombs.digit_picture(64)).save(picture, format="PNG")
    data = picture.getvalue()
    compressed = zlib.compress(b"".join(b"\0" + bytes(64) for _ in range(64)))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    idats = b"".join(chunk(b"IDAT", compressed[i : i + 1]) for i in range(len(compressed)))
    idats += chunk(b"IDAT", b"") * decode_work.MAX_PNG_CHUNKS
    assert "chunks" in _refused(data[:33] + idats + chunk(b"IEND", b""))


def _jpeg(picture: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def _png(picture: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize("side", [28, 300, 2048, 4096])
def test_ordinary_pictures_pass(side):
    grey = image_bombs.digit_picture(side)
    colour = np.stack([grey, grey // 2, 255 - grey], axis=-1)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: a photo taken sideways
    pictures = [
        _jpeg(grey),
        _jpeg(colour, progressive=True),
        _jpeg(grey, progressive=True, optimize=True),
        _jpeg(colour, exif=exif.tobytes(), subsampling=0),
        _png(grey),
        _png(colour, optimize=True),
    ]
    for data in pictures:
        decode_work.check_decode_work(data)


def test_what_is_not_a_jpeg_or_png_is_left_to_the_decoder():
    for data in (b"", b"GIF89a" + bytes(100), b"\xff\xd8", b"\xff\xd8\xff\xda", b"\x89PNG\r\n\x1a\n\x00"):
        decode_work.check_decode_work(data)


def test_the_web_uis_preprocessing_refuses_before_pillow_opens_anything(monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("Pillow was asked to open a picture the structure check should have refused")

    monkeypatch.setattr(preprocessing.Image, "open", no_decoding)
    for bomb in (
        image_bombs.jpeg_scan_bomb(2048, 2400),
        image_bombs.jpeg_marker_flood(100_000),
        image_bombs.png_chunk_flood(50_000),
    ):
        with pytest.raises(preprocessing.ImageTooLargeError):
            preprocessing.decode_image(bomb)


@pytest.mark.parametrize("size", [(4096, 1), (2048, 1), (1, 1025), (1025, 2), (3000, 3)])
def test_long_thin_jpegs_are_an_image_error_not_a_crash(size):
    """The reduce-before-decode step asked Pillow for a 1024x0 draft and divided by zero."""
    picture = np.zeros(size[::-1], np.uint8)
    picture[..., : max(1, size[0] // 2)] = 255
    with pytest.raises(preprocessing.ImageError):
        # Either "no digit" or a digit: never a ZeroDivisionError.
        preprocessing.preprocess_image_bytes(_jpeg(picture))
        raise preprocessing.ImageError("decoded")
