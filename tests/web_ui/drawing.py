"""Digits drawn with Pillow, as a person's upload would look."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def draw_seven(size=(300, 200), box=(40, 30, 160, 190), width=14, ink=0, paper=255) -> Image.Image:
    """A '7' drawn with Pillow inside `box` (left, top, right, bottom) of a grey picture."""
    image = Image.new("L", size, paper)
    left, top, right, bottom = box
    pen = ImageDraw.Draw(image)
    pen.line([(left, top), (right, top), (left + (right - left) // 3, bottom)], fill=ink, width=width)
    return image


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()
