"""What a model's input and output shapes fix: layout, channel count, a fixed height or width,
the class count; and a described input_size checked against them.

The shapes are ones `model.check_io` accepted: a 4-D image input and an [N, K] output. A
dimension that is symbolic ("batch") or unknown counts as not fixed.
"""

from __future__ import annotations

from typing import Any

from edgeserve.errors import ModelLoadError
from edgeserve.inference.description.coerce import Fail, decoded, whole
from edgeserve.inference.description.vocabulary import DEFAULT_IMG_SIZE, MAX_IMG_SIZE


def dim(value: Any) -> int | None:
    """A fixed dimension as an int; symbolic ("batch") or unknown (None) as None."""
    return value if isinstance(value, int) and value > 0 else None


def class_count(output_shape: list[Any]) -> int | None:
    """K of an [N, K] output; None when it is not fixed."""
    return dim(output_shape[1])


def infer_layout(given: str | None, shape: list[Any], model: str) -> str:
    """The described layout checked against the input shape, else the one the shape shows."""
    dims = [dim(d) for d in shape]
    if given is None:
        if dims[1] in (1, 3) or (dims[1] is None and dims[3] not in (1, 3)):
            return "NCHW"  # the default when the shape does not tell
        if dims[3] in (1, 3):
            return "NHWC"
        raise ModelLoadError(
            f"model {model}: input shape {shape} has no 1- or 3-channel axis: "
            "an image input must be [N,C,H,W] or [N,H,W,C] with C 3 (colour) or 1 (grey)"
        )
    channels = dims[1] if given == "NCHW" else dims[3]
    if channels not in (1, 3, None):
        raise ModelLoadError(
            f"model {model}: layout {given} puts {channels} channels on the channel axis of "
            f"input shape {shape}: set layout to match the input or drop it to infer it"
        )
    return given


def input_dims(layout: str, shape: list[Any]) -> tuple[int, tuple[int | None, int | None]]:
    """Channel count (3 when not fixed) and the fixed (height, width), None where dynamic."""
    channels, height, width = (
        (shape[1], shape[2], shape[3]) if layout == "NCHW" else (shape[3], shape[1], shape[2])
    )
    return dim(channels) or 3, (dim(height), dim(width))


def input_size(
    raw: dict[str, Any], fixed_hw: tuple[int | None, int | None], fail: Fail
) -> tuple[int, int]:
    """(height, width) to serve: the described input_size, which must match a fixed side, else
    the fixed sides, else DEFAULT_IMG_SIZE."""
    if "input_size" not in raw:
        height, width = fixed_hw
        return (height or width or DEFAULT_IMG_SIZE, width or height or DEFAULT_IMG_SIZE)
    value = decoded(raw["input_size"])
    if not isinstance(value, list):
        value = [value, value]
    if len(value) != 2:
        raise fail("input_size", f"must be [height, width] or one number, got {value!r}")
    size = (
        whole(value[0], "input_size", fail, 1, MAX_IMG_SIZE),
        whole(value[1], "input_size", fail, 1, MAX_IMG_SIZE),
    )
    for given, fixed in zip(size, fixed_hw, strict=True):
        if fixed is not None and given != fixed:
            shown = "x".join(str(d) if d else "?" for d in fixed_hw)
            raise fail(
                "input_size",
                f"is {size[0]}x{size[1]} but the model input is fixed at {shown}: "
                "remove input_size or make them match",
            )
    return size
