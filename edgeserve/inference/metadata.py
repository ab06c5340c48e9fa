"""Model metadata: how to feed a model and read its output (ModelMeta), built from its ONNX
metadata_props overridden key by key by a sidecar JSON next to it.

`read_meta` reads both for a loaded session; `build_meta` merges and validates raw values
against the model's shapes, filling in defaults and recording where each value came from.
Every problem is one ModelLoadError line naming the key and whose value it was. The pieces
live in `inference.description`: vocabulary, sources, coerce, labels, shapes, preprocessing.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeserve.errors import ModelLoadError
from edgeserve.inference.description import preprocessing, shapes
from edgeserve.inference.description.coerce import choice, flag
from edgeserve.inference.description.labels import pick_labels
from edgeserve.inference.description.sources import embedded_meta, read_sidecar
from edgeserve.inference.description.vocabulary import (
    ASSUMED,
    CHANNEL_ORDERS,
    COLORS,
    DEFAULT_CROP_PCT,
    DEFAULT_IMG_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    INTERPOLATIONS,
    LABEL_KEYS,
    LAYOUTS,
    META_KEYS,
    MODEL,
    OPENCV_INTERPOLATIONS,
    OUTPUTS,
    PREPROCESSING_KEYS,
    RESIZE_BACKENDS,
    RESIZES,
    SIDECAR,
)


@dataclass(frozen=True)
class ModelMeta:
    """How to feed a model and how to read its output."""

    labels: tuple[str, ...]
    layout: str = "NCHW"
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    output: str = "logits"
    input_size: tuple[int, int] = (DEFAULT_IMG_SIZE, DEFAULT_IMG_SIZE)
    """(height, width) served when a request names no size."""
    fixed: bool = False
    """The model's input shape fixes the height or width: requests cannot change the size."""
    resize: str = "stretch"
    resize_size: int | None = None
    crop_pct: float | None = None
    interpolation: str = "bilinear"
    resize_backend: str = "pillow"
    """Whose resize: Pillow's filters (torchvision, timm) or OpenCV's (cv2.resize pipelines)."""
    pad_value: tuple[int, ...] = (0, 0, 0)
    color: str = "rgb"
    exif_transpose: bool = False
    described: bool = True
    """The sidecar or the model's metadata said something about preprocessing."""
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Where each key's value came from: "sidecar", "model" or "assumed"."""
    label_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    """Label -> its first index, built with the model (off the event loop): a request looks a
    label up, never scans the list, which may hold 100,000 labels."""

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for position, label in enumerate(self.labels):
            index.setdefault(label, position)
        object.__setattr__(self, "label_index", index)  # frozen: set once, here

    @property
    def channels(self) -> int:
        return len(self.mean)

    def assumed(self) -> dict[str, Any]:
        """The preprocessing values nobody gave, which defaults filled in."""
        values = self.to_dict()
        return {key: values[key] for key in PREPROCESSING_KEYS if self.sources.get(key) == ASSUMED}

    def crop_resize(self, size: tuple[int, int]) -> int:
        """center_crop: the shorter side's length before cropping to `size` (height, width)."""
        side = max(size)
        if self.resize_size is not None and size == self.input_size:
            return self.resize_size
        if self.crop_pct is not None:
            return math.floor(side / self.crop_pct)  # timm's rule
        if self.resize_size is not None:  # another size than described: keep the same ratio
            return round(side * self.resize_size / max(self.input_size))
        return round(side / DEFAULT_CROP_PCT)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready view (for `models inspect` and the admin API)."""
        return {
            "labels": list(self.labels),
            "input_size": list(self.input_size),
            "fixed_size": self.fixed,
            "resize": self.resize,
            "resize_size": self.resize_size,
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
            "resize_backend": self.resize_backend,
            "pad_value": list(self.pad_value),
            "color": self.color,
            "channel_order": self.channel_order,
            "layout": self.layout,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "output": self.output,
            "exif_transpose": self.exif_transpose,
        }


def sidecar_path(path: Path) -> Path:
    """The JSON file next to a model that overrides its metadata: `vA.onnx` -> `vA.json`."""
    return Path(path).with_suffix(".json")


def unnamed_sidecar(meta: ModelMeta, path: Path) -> str | None:
    """The sidecar that would name a model's classes, when its labels are the class_N defaults
    (the usual cause of a labels mismatch: that file is missing)."""
    return sidecar_path(path).name if meta.sources.get("labels") == ASSUMED else None


def read_meta(path: Path, session: Any) -> ModelMeta:
    """Merge the model's metadata_props with its sidecar JSON (sidecar wins) and validate.

    The session's inputs and outputs are ones `model.check_io` accepted."""
    path = Path(path)
    sidecar = sidecar_path(path)
    return build_meta(
        read_sidecar(sidecar),
        list(session.get_inputs()[0].shape),
        list(session.get_outputs()[0].shape),
        model=path.name,
        embedded=embedded_meta(session),
        sidecar_name=sidecar.name,
    )


def build_meta(
    raw: dict[str, Any],
    input_shape: list[Any],
    output_shape: list[Any],
    *,
    model: str = "model",
    embedded: dict[str, Any] | None = None,
    sidecar_name: str = "sidecar",
) -> ModelMeta:
    """Validate the sidecar (`raw`) over the model's own values (`embedded`) against its shapes.

    The shapes are ones `model.check_io` accepts: a 4-D image input and an [N, K] output."""
    own = _renamed(embedded or {})
    given = _renamed(raw)
    merged = {**own, **given}
    sources = {key: SIDECAR if key in given else MODEL for key in merged}

    def fail(key: str, problem: str) -> ModelLoadError:
        where = sidecar_name if sources.get(key) == SIDECAR else "the model's metadata"
        return ModelLoadError(f"model {model}: {key} in {where} {problem}")

    layout = shapes.infer_layout(choice(merged, "layout", LAYOUTS, fail), input_shape, model)
    sources.setdefault("layout", MODEL)  # read off the input shape
    channels, fixed_hw = shapes.input_dims(layout, input_shape)

    color = choice(merged, "color", COLORS, fail, lower=True)
    if color is None:
        color = "rgb" if channels == 3 else "grayscale"
        sources["color"] = MODEL
    elif color == "rgb" and channels != 3:
        raise fail("color", f"is rgb but the model input has {channels} channel: use grayscale")

    input_size = shapes.input_size(merged, fixed_hw, fail)
    if "input_size" not in merged and any(fixed_hw):
        sources["input_size"] = MODEL  # read off the input shape
    resize = choice(merged, "resize", RESIZES, fail, lower=True) or "stretch"
    resize_size, crop_pct = preprocessing.crop(merged, resize, input_size, fail)
    backend = choice(merged, "resize_backend", RESIZE_BACKENDS, fail, lower=True) or "pillow"
    interpolations = OPENCV_INTERPOLATIONS if backend == "opencv" else INTERPOLATIONS
    interpolation = choice(merged, "interpolation", interpolations, fail, lower=True)
    if backend == "opencv" and not opencv_installed():
        raise fail(
            "resize_backend",
            "is opencv but OpenCV is not installed: pip install 'edgeserve[opencv]' "
            "(opencv-python-headless) or remove the key to resize with Pillow",
        )
    channel_order = choice(merged, "channel_order", CHANNEL_ORDERS, fail) or "RGB"
    if channels == 1 and channel_order == "BGR":
        raise fail("channel_order", "is BGR but the model input has 1 channel: drop it")
    output = choice(merged, "output", OUTPUTS, fail, lower=True) or "logits"
    scale, mean, std = preprocessing.normalisation(merged, channels, fail)
    pad_value = preprocessing.pad_value(merged, channels, fail)

    labels = pick_labels(own, given, shapes.class_count(output_shape), fail, sources)
    if labels is None:
        raise ModelLoadError(
            f"model {model}: the output has no fixed class count: "
            "add a labels list to its metadata or sidecar JSON"
        )
    for key in PREPROCESSING_KEYS:
        sources.setdefault(key, ASSUMED)
    return ModelMeta(
        labels=labels,
        layout=layout,
        channel_order=channel_order,
        scale=scale,
        mean=mean,
        std=std,
        output=output,
        input_size=input_size,
        fixed=any(fixed_hw),
        resize=resize,
        resize_size=resize_size,
        crop_pct=crop_pct,
        interpolation=interpolation or "bilinear",
        resize_backend=backend,
        pad_value=pad_value,
        color=color,
        exif_transpose=flag(merged, "exif_transpose", fail),
        described=bool(set(merged) - set(LABEL_KEYS)),
        sources={key: value for key, value in sources.items() if key in META_KEYS},
    )


def opencv_installed() -> bool:
    """cv2 is an optional extra; find it without importing it (the import takes 0.1 s)."""
    return importlib.util.find_spec("cv2") is not None


def _renamed(values: dict[str, Any]) -> dict[str, Any]:
    """img_size is the old name of input_size; input_size wins when a source has both."""
    out = dict(values)
    legacy = out.pop("img_size", None)
    if legacy is not None and "input_size" not in out:
        out["input_size"] = legacy
    return out
