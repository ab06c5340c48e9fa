"""Model metadata: labels and preprocessing, from ONNX metadata_props and a sidecar JSON."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeserve.errors import ModelLoadError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMG_SIZE = 224
MAX_IMG_SIZE = 4096
DEFAULT_CROP_PCT = 0.875  # torchvision's ImageNet eval: resize 256, crop 224

LABEL_KEYS = ("labels", "classes", "names")  # the names exporters store class names under
PREPROCESSING_KEYS = (
    "input_size",
    "resize",
    "resize_size",
    "crop_pct",
    "interpolation",
    "pad_value",
    "color",
    "channel_order",
    "layout",
    "scale",
    "mean",
    "std",
    "output",
    "exif_transpose",
)
LEGACY_KEYS = ("img_size",)  # the first name of input_size, still read
META_KEYS = LABEL_KEYS + PREPROCESSING_KEYS + LEGACY_KEYS
LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")
OUTPUTS = ("logits", "probabilities", "sigmoid")
RESIZES = ("stretch", "center_crop", "letterbox")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
COLORS = ("rgb", "grayscale")
SIDECAR, MODEL, ASSUMED = "sidecar", "model", "assumed"

Fail = Callable[[str, str], ModelLoadError]


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
    pad_value: tuple[int, ...] = (0, 0, 0)
    color: str = "rgb"
    exif_transpose: bool = False
    described: bool = True
    """The sidecar or the model's metadata said something about preprocessing."""
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Where each key's value came from: "sidecar", "model" or "assumed"."""

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


def read_meta(path: Path, session: Any) -> ModelMeta:
    """Merge the model's metadata_props with its sidecar JSON (sidecar wins) and validate."""
    path = Path(path)
    sidecar = sidecar_path(path)
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    return build_meta(
        read_sidecar(sidecar),
        list(inputs[0].shape) if inputs else [],
        list(outputs[0].shape) if outputs else [],
        model=path.name,
        embedded=embedded_meta(session),
        sidecar_name=sidecar.name,
    )


def embedded_meta(session: Any) -> dict[str, Any]:
    """The model's metadata_props that we read; a model without any is fine."""
    try:
        props = dict(session.get_modelmeta().custom_metadata_map or {})
    except Exception:  # an exporter that wrote no metadata at all
        return {}
    return {key: value for key, value in props.items() if key in META_KEYS}


def build_meta(
    raw: dict[str, Any],
    input_shape: list[Any],
    output_shape: list[Any],
    *,
    model: str = "model",
    embedded: dict[str, Any] | None = None,
    sidecar_name: str = "sidecar",
) -> ModelMeta:
    """Validate the sidecar (`raw`) over the model's own values (`embedded`) against its shapes."""
    own = _renamed(embedded or {})
    given = _renamed(raw)
    merged = {**own, **given}
    sources = {key: SIDECAR if key in given else MODEL for key in merged}

    def fail(key: str, problem: str) -> ModelLoadError:
        where = sidecar_name if sources.get(key) == SIDECAR else "the model's metadata"
        return ModelLoadError(f"model {model}: {key} in {where} {problem}")

    layout = _layout(_choice(merged, "layout", LAYOUTS, fail), input_shape, model)
    sources.setdefault("layout", MODEL)  # read off the input shape
    channels, fixed_hw = _input_dims(layout, input_shape)

    color = _choice(merged, "color", COLORS, fail, lower=True)
    if color is None:
        color = "rgb" if channels == 3 else "grayscale"
        sources["color"] = MODEL
    elif color == "rgb" and channels != 3:
        raise fail("color", f"is rgb but the model input has {channels} channel: use grayscale")

    input_size = _input_size(merged, fixed_hw, fail)
    if "input_size" not in merged and any(fixed_hw):
        sources["input_size"] = MODEL  # read off the input shape
    resize = _choice(merged, "resize", RESIZES, fail, lower=True) or "stretch"
    resize_size, crop_pct = _crop(merged, resize, input_size, fail)
    interpolation = _choice(merged, "interpolation", INTERPOLATIONS, fail, lower=True)
    channel_order = _choice(merged, "channel_order", CHANNEL_ORDERS, fail) or "RGB"
    if channels == 1 and channel_order == "BGR":
        raise fail("channel_order", "is BGR but the model input has 1 channel: drop it")
    output = _choice(merged, "output", OUTPUTS, fail, lower=True) or "logits"
    scale = _number(merged["scale"], "scale", fail) if "scale" in merged else 1.0 / 255.0
    if scale <= 0:
        raise fail("scale", f"must be > 0, got {scale!r}: fix it or remove it to use 1/255")
    default_mean, default_std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.0,), (1.0,))
    mean = _numbers(merged, "mean", channels, fail) or default_mean
    std = _numbers(merged, "std", channels, fail) or default_std
    if any(s <= 0 for s in std):
        raise fail("std", f"must be numbers > 0, got {list(std)}")
    _check_mean_range(mean, scale, fail)
    pad_value = _pad_value(merged, channels, fail)

    labels = _pick_labels(own, given, _class_count(output_shape), fail, sources)
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
        pad_value=pad_value,
        color=color,
        exif_transpose=_flag(merged, "exif_transpose", fail),
        described=bool(set(merged) - set(LABEL_KEYS)),
        sources={key: value for key, value in sources.items() if key in META_KEYS},
    )


def read_sidecar(sidecar: Path) -> dict[str, Any]:
    """The sidecar's keys; keys starting with "_" are comments and ignored."""
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
    data = {key: value for key, value in data.items() if not key.startswith("_")}
    unknown = sorted(set(data) - set(META_KEYS))
    if unknown:
        raise ModelLoadError(
            f"sidecar {sidecar} has unknown keys {unknown}: allowed are {list(META_KEYS)}"
        )
    return data


def _renamed(values: dict[str, Any]) -> dict[str, Any]:
    """img_size is the old name of input_size; input_size wins when a source has both."""
    out = dict(values)
    legacy = out.pop("img_size", None)
    if legacy is not None and "input_size" not in out:
        out["input_size"] = legacy
    return out


def _decoded(value: Any) -> Any:
    """metadata_props values are strings; JSON-decode those that hold lists or objects."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except ValueError:
                try:  # exporters such as ultralytics write Python literals: {0: 'person'}
                    return ast.literal_eval(text)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
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


def _flag(raw: dict[str, Any], key: str, fail: Fail) -> bool:
    value = raw.get(key, False)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, bool):
        return value
    raise fail(key, f"must be true or false, got {value!r}")


def _number(value: Any, key: str, fail: Fail) -> float:
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


def _whole(value: Any, key: str, fail: Fail, low: int, high: int) -> int:
    number = _number(value, key, fail)
    if number != int(number) or not low <= number <= high:
        raise fail(key, f"must be a whole number from {low} to {high}, got {value!r}")
    return int(number)


def _per_channel(value: Any, key: str, channels: int, fail: Fail) -> list[Any]:
    """One value for every channel, or exactly one per channel."""
    value = _decoded(value)
    if not isinstance(value, list):
        value = [value]
    if len(value) == 1:
        value = value * channels
    if len(value) != channels:
        raise fail(key, f"must be one number or {channels} (one per channel), got {value!r}")
    return value


def _numbers(raw: dict[str, Any], key: str, channels: int, fail: Fail) -> tuple[float, ...] | None:
    if key not in raw:
        return None
    return tuple(_number(v, key, fail) for v in _per_channel(raw[key], key, channels, fail))


def _check_mean_range(mean: tuple[float, ...], scale: float, fail: Fail) -> None:
    """Pixels 0..255 times scale span 0..255*scale; a mean outside that is in other units."""
    top = 255.0 * scale
    if any(not -1e-6 <= m <= top * (1 + 1e-6) for m in mean):
        raise fail(
            "mean",
            f"{[round(m, 6) for m in mean]} is outside 0..{top:.6g}, the range pixels take "
            f"after scale {scale:.6g}: give mean in those units or change scale",
        )


def _pad_value(raw: dict[str, Any], channels: int, fail: Fail) -> tuple[int, ...]:
    if "pad_value" not in raw:
        return (0,) * channels
    values = _per_channel(raw["pad_value"], "pad_value", channels, fail)
    return tuple(_whole(v, "pad_value", fail, 0, 255) for v in values)


def _input_size(
    raw: dict[str, Any], fixed_hw: tuple[int | None, int | None], fail: Fail
) -> tuple[int, int]:
    if "input_size" not in raw:
        height, width = fixed_hw
        return (height or width or DEFAULT_IMG_SIZE, width or height or DEFAULT_IMG_SIZE)
    value = _decoded(raw["input_size"])
    if not isinstance(value, list):
        value = [value, value]
    if len(value) != 2:
        raise fail("input_size", f"must be [height, width] or one number, got {value!r}")
    size = (
        _whole(value[0], "input_size", fail, 1, MAX_IMG_SIZE),
        _whole(value[1], "input_size", fail, 1, MAX_IMG_SIZE),
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


def _crop(
    raw: dict[str, Any], resize: str, input_size: tuple[int, int], fail: Fail
) -> tuple[int | None, float | None]:
    for key in ("resize_size", "crop_pct"):
        if key in raw and resize != "center_crop":
            raise fail(key, f'applies only to resize "center_crop", not "{resize}": remove it')
    if "resize_size" in raw and "crop_pct" in raw:
        raise fail("crop_pct", "and resize_size both set the resize before the crop: keep one")
    crop_pct = None
    if "crop_pct" in raw:
        crop_pct = _number(raw["crop_pct"], "crop_pct", fail)
        if not 0 < crop_pct <= 1:
            raise fail("crop_pct", f"must be > 0 and <= 1, got {raw['crop_pct']!r}")
    resize_size = None
    if "resize_size" in raw:
        resize_size = _whole(raw["resize_size"], "resize_size", fail, 1, MAX_IMG_SIZE)
        if resize_size < max(input_size):
            raise fail(
                "resize_size",
                f"{resize_size} is smaller than the input {input_size[0]}x{input_size[1]}: "
                "the resized image must cover the crop",
            )
    return resize_size, crop_pct


def _class_count(output_shape: list[Any]) -> int | None:
    num_classes = output_shape[1] if len(output_shape) == 2 else None
    return num_classes if isinstance(num_classes, int) and num_classes > 0 else None


def _pick_labels(
    own: dict[str, Any],
    given: dict[str, Any],
    num_classes: int | None,
    fail: Fail,
    sources: dict[str, str],
) -> tuple[str, ...] | None:
    """The sidecar's labels, else the model's under labels/classes/names, else class_<i>."""
    for values, source in ((given, SIDECAR), (own, MODEL)):
        for key in LABEL_KEYS:
            if key not in values:
                continue
            lenient = source == MODEL and key != "labels"  # other tools' keys may mean other things
            try:
                labels = _labels(values[key], num_classes, fail, key)
            except ModelLoadError:
                if lenient:
                    continue
                raise
            sources["labels"] = source
            return labels
    if num_classes is None:
        return None
    sources["labels"] = ASSUMED
    return tuple(f"class_{i}" for i in range(num_classes))


def _labels(value: Any, num_classes: int | None, fail: Fail, key: str) -> tuple[str, ...]:
    value = _decoded(value)
    if isinstance(value, str):
        if "\n" not in value.strip():
            raise fail(key, 'must be a JSON list of strings, e.g. ["cat", "dog"], or one a line')
        value = [line.strip() for line in value.splitlines() if line.strip()]
    if isinstance(value, dict):
        value = _indexed(value, fail, key)
    if not isinstance(value, list) or not value:
        raise fail(key, f"must be a non-empty list of strings, got {type(value).__name__}")
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    if bad:
        raise fail(key, f"must hold only non-empty strings, found {bad[0]!r}")
    if num_classes is not None and len(value) != num_classes:
        raise fail(
            key,
            f"has {len(value)} entries but the model outputs {num_classes} classes: "
            "give exactly one label per class",
        )
    return tuple(value)


def _indexed(mapping: dict[Any, Any], fail: Fail, key: str) -> list[Any]:
    """{index: name} (keys as numbers or strings) -> names in index order, 0..n-1 all present."""
    try:
        by_index = {int(k): v for k, v in mapping.items()}
    except (TypeError, ValueError):
        raise fail(key, "must map class indexes 0, 1, ... to names") from None
    if sorted(by_index) != list(range(len(by_index))):
        raise fail(key, f"must map every index from 0 to {len(by_index) - 1} to a name")
    return [by_index[i] for i in range(len(by_index))]


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


def _input_dims(layout: str, shape: list[Any]) -> tuple[int, tuple[int | None, int | None]]:
    """Channel count (3 when not fixed) and the fixed (height, width), None where dynamic."""
    channels, height, width = (
        (shape[1], shape[2], shape[3]) if layout == "NCHW" else (shape[3], shape[1], shape[2])
    )
    return _dim(channels) or 3, (_dim(height), _dim(width))
