"""The preprocessing values that constrain each other or the channel count: the resize
before a center crop, the normalisation (scale, mean, std) and the letterbox pad value.

Each function takes the merged raw description and returns checked values, the defaults
filled in where a key is absent, or raises `fail(key, problem)`.
"""

from __future__ import annotations

from typing import Any

from edgeserve.inference.description.coerce import Fail, number, numbers, per_channel, whole
from edgeserve.inference.description.vocabulary import IMAGENET_MEAN, IMAGENET_STD, MAX_IMG_SIZE


def crop(
    raw: dict[str, Any], resize: str, input_size: tuple[int, int], fail: Fail
) -> tuple[int | None, float | None]:
    """(resize_size, crop_pct): at most one, only for center_crop, covering the input."""
    for key in ("resize_size", "crop_pct"):
        if key in raw and resize != "center_crop":
            raise fail(key, f'applies only to resize "center_crop", not "{resize}": remove it')
    if "resize_size" in raw and "crop_pct" in raw:
        raise fail("crop_pct", "and resize_size both set the resize before the crop: keep one")
    crop_pct = None
    if "crop_pct" in raw:
        crop_pct = number(raw["crop_pct"], "crop_pct", fail)
        if not 0 < crop_pct <= 1:
            raise fail("crop_pct", f"must be > 0 and <= 1, got {raw['crop_pct']!r}")
    resize_size = None
    if "resize_size" in raw:
        resize_size = whole(raw["resize_size"], "resize_size", fail, 1, MAX_IMG_SIZE)
        if resize_size < max(input_size):
            raise fail(
                "resize_size",
                f"{resize_size} is smaller than the input {input_size[0]}x{input_size[1]}: "
                "the resized image must cover the crop",
            )
    return resize_size, crop_pct


def normalisation(
    raw: dict[str, Any], channels: int, fail: Fail
) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """(scale, mean, std): 1/255 and ImageNet's for colour, (0,), (1,) for grey by default."""
    scale = number(raw["scale"], "scale", fail) if "scale" in raw else 1.0 / 255.0
    if scale <= 0:
        raise fail("scale", f"must be > 0, got {scale!r}: fix it or remove it to use 1/255")
    default_mean, default_std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.0,), (1.0,))
    mean = numbers(raw, "mean", channels, fail) or default_mean
    std = numbers(raw, "std", channels, fail) or default_std
    if any(s <= 0 for s in std):
        raise fail("std", f"must be numbers > 0, got {list(std)}")
    _check_mean_range(mean, scale, fail)
    return scale, mean, std


def _check_mean_range(mean: tuple[float, ...], scale: float, fail: Fail) -> None:
    """Pixels 0..255 times scale span 0..255*scale; a mean outside that is in other units."""
    top = 255.0 * scale
    if any(not -1e-6 <= m <= top * (1 + 1e-6) for m in mean):
        raise fail(
            "mean",
            f"{[round(m, 6) for m in mean]} is outside 0..{top:.6g}, the range pixels take "
            f"after scale {scale:.6g}: give mean in those units or change scale",
        )


def pad_value(raw: dict[str, Any], channels: int, fail: Fail) -> tuple[int, ...]:
    """The letterbox fill, 0..255 per channel; black by default."""
    if "pad_value" not in raw:
        return (0,) * channels
    values = per_channel(raw["pad_value"], "pad_value", channels, fail)
    return tuple(whole(v, "pad_value", fail, 0, 255) for v in values)
