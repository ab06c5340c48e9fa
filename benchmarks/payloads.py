"""Deterministic natural-looking test images: gradients, smooth noise, shapes and grain."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SEED = 7


def natural_image(width: int, height: int, seed: int = SEED) -> Image.Image:
    """A sky-to-ground gradient with soft blobs, a few shapes and sensor-like grain."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    sky = np.array([90, 150, 220], dtype=np.float32)
    ground = np.array([70, 110, 40], dtype=np.float32)
    horizon = 1.0 / (1.0 + np.exp(-(y - 0.55) * 18.0))  # soft horizon line
    base = sky * (1 - horizon[..., None]) + ground * horizon[..., None]
    base = base + (x[..., None] - 0.5) * np.array([30, 10, -20], dtype=np.float32)
    # low-frequency texture: coarse noise upsampled smoothly
    coarse = rng.standard_normal((height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    texture = np.asarray(
        Image.fromarray(((coarse * 40) + 128).clip(0, 255).astype(np.uint8)).resize(
            (width, height), Image.Resampling.BICUBIC
        ),
        dtype=np.float32,
    )
    pixels = (base + (texture - 128) * 0.5).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        cx, cy = rng.uniform(0, width), rng.uniform(0.3 * height, height)
        r = rng.uniform(0.05, 0.2) * min(width, height)
        colour = tuple(int(v) for v in rng.integers(30, 230, 3))
        if rng.random() < 0.5:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r * 0.8), fill=colour)
        else:
            points = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in rng.uniform(0, 6.3, 5)]
            draw.polygon(points, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.2))  # soften edges like a lens
    grain = rng.normal(0, 4.0, (height, width, 3)).astype(np.float32)
    noisy = (np.asarray(image, dtype=np.float32) + grain).clip(0, 255).astype(np.uint8)
    return Image.fromarray(noisy, "RGB")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def build_payloads() -> dict[str, bytes]:
    """The two benchmark images: a 224x224 PNG and a 640x480 JPEG (quality 90)."""
    return {
        "png224": encode(natural_image(224, 224), "PNG"),
        "jpeg640": encode(natural_image(640, 480, seed=SEED + 1), "JPEG", quality=90),
    }
