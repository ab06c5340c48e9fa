"""Model metadata: labels and preprocessing, from ONNX metadata_props and a sidecar JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeserve.errors import ModelLoadError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMG_SIZE = 224
MAX_IMG_SIZE = 4096

META_KEYS = ("labels", "layout", "channel_order", "scale", "mean", "std", "output", "img_size")
LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")
OUTPUTS = ("logits", "probabilities")


@dataclass(frozen=True)
class ModelMeta:
    """How to feed a model and how to read its output."""

    labels: tuple[str, ...]
    layout: str = "NCHW"
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    output: str = "logits"
    default_img_size: int = DEFAULT_IMG_SIZE
    fixed_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready view (for `models inspect` and the admin API)."""
        return {
            "labels": list(self.labels),
            "layout": self.layout,
            "channel_order": self.channel_order,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "output": self.output,
            "default_img_size": self.default_img_size,
            "fixed_size": self.fixed_size,
        }


def sidecar_path(path: Path) -> Path:
    """The JSON file next to a model that overrides its metadata: `vA.onnx` -> `vA.json`."""
    return Path(path).with_suffix(".json")


def read_meta(path: Path, session: Any) -> ModelMeta:
    """Merge the model's metadata_props with its sidecar JSON (sidecar wins) and validate."""
    path = Path(path)
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    try:
        embedded = dict(session.get_modelmeta().custom_metadata_map or {})
    except Exception:  # a model without metadata is fine; defaults apply
        embedded = {}
    for key in META_KEYS:
        if key in embedded:
            raw[key] = embedded[key]
            sources[key] = "metadata_props"
    sidecar = sidecar_path(path)
    for key, value in _read_sidecar(sidecar).items():
        raw[key] = value
        sources[key] = sidecar.name

    inputs = session.get_inputs()
    outputs = session.get_outputs()
    input_shape = list(inputs[0].shape) if inputs else []
    output_shape = list(outputs[0].shape) if outputs else []
    return build_meta(raw, input_shape, output_shape, model=path.name, sources=sources)


def build_meta(
    raw: dict[str, Any],
    input_shape: list[Any],
    output_shape: list[Any],
    *,
    model: str = "model",
    sources: dict[str, str] | None = None,
) -> ModelMeta:
    """Validate raw metadata values against the model's input and output shapes."""
    sources = sources or {}

    def fail(key: str, problem: str) -> ModelLoadError:
        where = sources.get(key, "metadata")
        return ModelLoadError(f"model {model}: {key} in {where} {problem}")

    layout = _layout(_choice(raw, "layout", LAYOUTS, fail), input_shape, model)
    fixed_size = _fixed_size(layout, input_shape, model)

    channel_order = _choice(raw, "channel_order", CHANNEL_ORDERS, fail) or "RGB"
    output = _choice(raw, "output", OUTPUTS, fail, lower=True) or "logits"
    scale = _number(raw["scale"], "scale", fail) if "scale" in raw else 1.0 / 255.0
    if scale <= 0:
        raise fail("scale", f"must be > 0, got {scale!r}: fix it or remove it to use 1/255")
    mean = _triple(raw["mean"], "mean", fail) if "mean" in raw else IMAGENET_MEAN
    std = _triple(raw["std"], "std", fail) if "std" in raw else IMAGENET_STD
    if any(s <= 0 for s in std):
        raise fail("std", f"must be 3 numbers > 0, got {list(std)}")

    num_classes = output_shape[1] if len(output_shape) == 2 else None
    if not isinstance(num_classes, int) or num_classes <= 0:
        num_classes = None
    labels = _labels(raw["labels"], num_classes, fail) if "labels" in raw else None
    if labels is None:
        if num_classes is None:
            raise ModelLoadError(
                f"model {model}: the output has no fixed class count: "
                "add a labels list to its metadata or sidecar JSON"
            )
        labels = tuple(f"class_{i}" for i in range(num_classes))

    if "img_size" in raw:
        img_size = _img_size(raw["img_size"], fail)
        if fixed_size is not None and img_size != fixed_size:
            raise fail(
                "img_size",
                f"is {img_size} but the model input is fixed at {fixed_size}x{fixed_size}: "
                "remove img_size or make them match",
            )
    else:
        img_size = fixed_size or DEFAULT_IMG_SIZE

    return ModelMeta(
        labels=labels,
        layout=layout,
        channel_order=channel_order,
        scale=scale,
        mean=mean,
        std=std,
        output=output,
        default_img_size=img_size,
        fixed_size=fixed_size,
    )


def _read_sidecar(sidecar: Path) -> dict[str, Any]:
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(
            f"sidecar {sidecar} is not readable JSON ({reason}): fix or delete it"
        ) from None
    if not isinstance(data, dict):
        raise ModelLoadError(
            f"sidecar {sidecar} must hold a JSON object, got {type(data).__name__}"
        )
    unknown = sorted(set(data) - set(META_KEYS))
    if unknown:
        raise ModelLoadError(
            f"sidecar {sidecar} has unknown keys {unknown}: allowed are {list(META_KEYS)}"
        )
    return data


def _decoded(value: Any) -> Any:
    """metadata_props values are strings; JSON-decode those that hold lists or numbers."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] == "[":
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


def _choice(raw, key, allowed, fail, *, lower=False) -> str | None:
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, str):
        norm = value.strip().lower() if lower else value.strip().upper()
        if norm in allowed:
            return norm
    raise fail(key, f"must be one of {list(allowed)}, got {value!r}")


def _number(value: Any, key: str, fail) -> float:
    value = _decoded(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:  # "1/255" reads better than 0.00392156862745098
                num, den = text.split("/", 1)
                number = float(num) / float(den)
            else:
                number = float(text)
        except (ValueError, ZeroDivisionError):
            raise fail(key, f"must be a number, got {value!r}") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise fail(key, f"must be a number, got {value!r}")
    if not math.isfinite(number):
        raise fail(key, f"must be a finite number, got {value!r}")
    return number


def _triple(value: Any, key: str, fail) -> tuple[float, float, float]:
    value = _decoded(value)
    if not isinstance(value, list):
        value = [value]  # one number applies to all three channels
    if len(value) == 1:
        value = value * 3
    if len(value) != 3:
        raise fail(key, f"must be a list of 3 numbers, got {value!r}")
    a, b, c = (_number(v, key, fail) for v in value)
    return (a, b, c)


def _labels(value: Any, num_classes: int | None, fail) -> tuple[str, ...]:
    value = _decoded(value)
    if isinstance(value, str):
        raise fail("labels", 'must be a JSON list of strings, e.g. ["cat", "dog"]')
    if not isinstance(value, list) or not value:
        raise fail("labels", f"must be a non-empty list of strings, got {type(value).__name__}")
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    if bad:
        raise fail("labels", f"must hold only non-empty strings, found {bad[0]!r}")
    if num_classes is not None and len(value) != num_classes:
        raise fail(
            "labels",
            f"has {len(value)} entries but the model outputs {num_classes} classes: "
            "give exactly one label per class",
        )
    return tuple(value)


def _img_size(value: Any, fail) -> int:
    number = _number(value, "img_size", fail)
    if number != int(number) or not 1 <= number <= MAX_IMG_SIZE:
        raise fail("img_size", f"must be a whole number from 1 to {MAX_IMG_SIZE}, got {value!r}")
    return int(number)


def _dim(value: Any) -> int | None:
    """A fixed dimension as an int; symbolic ("batch") or unknown (None) as None."""
    return value if isinstance(value, int) and value > 0 else None


def _layout(given: str | None, shape: list[Any], model: str) -> str:
    if len(shape) != 4:
        raise ModelLoadError(
            f"model {model}: the input must be a 4-D image tensor (NCHW or NHWC), got shape {shape}"
        )
    dims = [_dim(d) for d in shape]
    if given is None:
        if dims[1] == 3 or (dims[1] is None and dims[3] != 3):
            return "NCHW"  # the default when the shape does not tell
        if dims[3] == 3:
            return "NHWC"
        raise ModelLoadError(
            f"model {model}: input shape {shape} has no 3-channel axis: "
            "an image input must be [N,3,H,W] or [N,H,W,3]"
        )
    channels = dims[1] if given == "NCHW" else dims[3]
    if channels not in (3, None):
        raise ModelLoadError(
            f"model {model}: layout {given} puts {channels} channels on the channel axis of "
            f"input shape {shape}: set layout to match the input or drop it to infer it"
        )
    return given


def _fixed_size(layout: str, shape: list[Any], model: str) -> int | None:
    height, width = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    height, width = _dim(height), _dim(width)
    if height is not None and width is not None and height != width:
        raise ModelLoadError(
            f"model {model}: fixed input size {height}x{width} is not square: "
            "only square inputs are supported, export the model with H == W"
        )
    return height or width
