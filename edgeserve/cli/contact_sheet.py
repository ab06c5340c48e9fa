"""A contact sheet of captured disagreements: one tile per input, its picture above A's and B's
top answers, so a person sees at a glance which inputs the models part on."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

THUMBNAIL = 160
"""Side of the square each picture is fitted into (scaled up or down, aspect kept)."""
PADDING = 6
LINE_HEIGHT = 14
CAPTION_LINES = 3
TILE_WIDTH = THUMBNAIL + 2 * PADDING
TILE_HEIGHT = THUMBNAIL + 2 * PADDING + CAPTION_LINES * LINE_HEIGHT
BACKGROUND = (255, 255, 255)
UNREADABLE = (200, 200, 200)
"""Where a picture that cannot be decoded goes: the tile still shows its answers."""
A_INK, B_INK, TIME_INK = (20, 60, 160), (170, 30, 30), (90, 90, 90)


@dataclass(frozen=True)
class Tile:
    record: dict[str, Any]
    """A captured disagreement as GET /admin/disagreements lists it."""
    image: bytes


def sheet_size(tiles: int, columns: int) -> tuple[int, int]:
    """Width and height of a sheet of `tiles` tiles, `columns` to a row at most."""
    return min(tiles, columns) * TILE_WIDTH, math.ceil(tiles / columns) * TILE_HEIGHT


def draw_sheet(tiles: list[Tile], columns: int) -> Image.Image:
    """Tiles left to right, top to bottom, in the order given."""
    sheet = Image.new("RGB", sheet_size(len(tiles), columns), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for n, tile in enumerate(tiles):
        left, top = (n % columns) * TILE_WIDTH, (n // columns) * TILE_HEIGHT
        picture = thumbnail(tile.image)
        offset = ((THUMBNAIL - picture.width) // 2, (THUMBNAIL - picture.height) // 2)
        sheet.paste(picture, (left + PADDING + offset[0], top + PADDING + offset[1]))
        y = top + PADDING * 2 + THUMBNAIL
        for ink, text in zip((A_INK, B_INK, TIME_INK), caption(tile.record), strict=True):
            draw.text((left + PADDING, y), fitted(draw, text, font), fill=ink, font=font)
            y += LINE_HEIGHT
    return sheet


def thumbnail(data: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (THUMBNAIL, THUMBNAIL))  # a big JPEG decodes at a fraction
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return Image.new("RGB", (THUMBNAIL, THUMBNAIL), UNREADABLE)
    return ImageOps.contain(upright, (THUMBNAIL, THUMBNAIL))


def caption(record: dict[str, Any]) -> list[str]:
    """`A label score`, `B label score` and the time of one disagreement."""
    lines = []
    for side in ("a", "b"):
        predictions = record[side]["predictions"]
        top = predictions[0] if predictions else {"label": "(none)", "score": 0.0}
        lines.append(f"{side.upper()}: {top['label']} {top['score']:.2f}")
    lines.append(record["time"].replace("T", " ")[:19])
    return lines


def fitted(draw: ImageDraw.ImageDraw, text: str, font: Any) -> str:
    """`text`, cut with an ellipsis to the tile's width."""
    room = THUMBNAIL
    if draw.textlength(text, font=font) <= room:
        return text
    while text and draw.textlength(text + "...", font=font) > room:
        text = text[:-1]
    return text + "..."
