"""Images made in memory, as bytes and as base64."""

from __future__ import annotations

import base64
import io

from PIL import Image

ORANGE = (255, 140, 0)


def image_bytes(colour: tuple[int, int, int], fmt: str = "PNG", size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, fmt)
    return buffer.getvalue()


def image_b64(colour: tuple[int, int, int], fmt: str = "PNG", size: int = 64) -> str:
    return base64.b64encode(image_bytes(colour, fmt, size)).decode()
