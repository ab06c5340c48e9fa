"""A starting sidecar for a model: what the model declares, a preset's pipeline, and the rest
as decisions left to the user (`edgeserve models init`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgeserve.errors import ModelLoadError
from edgeserve.inference.description.sources import embedded_meta
from edgeserve.inference.description.vocabulary import (
    ASSUMED,
    DEFAULT_CROP_PCT,
    IMAGENET_MEAN,
    IMAGENET_STD,
)
from edgeserve.inference.metadata import build_meta, opencv_installed
from edgeserve.inference.model import check_io

IMAGENET = {"scale": "1/255", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
PRESETS: dict[str, dict[str, Any]] = {
    "torchvision": {"resize": "center_crop", "interpolation": "bilinear", **IMAGENET},
    "timm": {
        "resize": "center_crop",
        "crop_pct": DEFAULT_CROP_PCT,
        "interpolation": "bicubic",
        **IMAGENET,
    },
    "caffe": {
        "resize": "center_crop",
        "interpolation": "bilinear",
        "channel_order": "BGR",
        "scale": 1,
        "mean": [103.939, 116.779, 123.68],
        "std": [1, 1, 1],
    },
    # PaddleClas / PaddleOCR eval (ResizeImage resize_short, CropImage): cv2.resize, INTER_LINEAR
    "paddle": {
        "resize": "center_crop",
        "resize_backend": "opencv",
        "interpolation": "bilinear",
        **IMAGENET,
    },
    "letterbox": {
        "resize": "letterbox",
        "pad_value": 114,
        "interpolation": "bilinear",
        "scale": "1/255",
        "mean": [0, 0, 0],
        "std": [1, 1, 1],
    },
}
PRESET_SIZE = {"letterbox": 640}
COMMENT = (
    "Written by edgeserve models init. Keys starting with _ are ignored. "
    "Every key is explained in docs/operations.md, section 'Bring your own model'."
)


def starting_sidecar(path: Path, preset: str | None) -> tuple[dict[str, Any], list[str]]:
    """The sidecar to write for the model at `path`, and what the user must still decide."""
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:
        raise ModelLoadError(
            f"model file {path} is not a loadable ONNX model: check that it is a complete export"
        ) from None
    check_io(path, session)  # build_meta reads the shapes it accepts
    image, scores = session.get_inputs()[0], session.get_outputs()[0]
    embedded = embedded_meta(session)
    declared = build_meta({}, list(image.shape), list(scores.shape), embedded=embedded)
    todo: list[str] = []
    sidecar: dict[str, Any] = {"_comment": COMMENT}
    if declared.sources["labels"] == ASSUMED:
        todo.append("labels: the model names no classes; list them in the order of its output")
    sidecar["labels"] = list(declared.labels)
    sidecar["layout"] = declared.layout
    sidecar["color"] = declared.color
    size = declared.input_size
    if not declared.fixed and declared.sources["input_size"] == ASSUMED:
        side = PRESET_SIZE.get(preset or "", size[0])
        size = (side, side)
        todo.append(
            f"input_size: the model takes any size; {side} is a guess, use the training size"
        )
    sidecar["input_size"] = size[0] if size[0] == size[1] else list(size)

    pipeline = dict(PRESETS[preset]) if preset else {}
    if preset is None:
        todo.append(
            "resize, interpolation, scale, mean, std, channel_order: copy them from the model's "
            "training or evaluation code, or start from a --preset "
            "(torchvision|timm|caffe|paddle|letterbox)"
        )
    elif declared.channels == 1:
        pipeline.pop("channel_order", None)
        pipeline["mean"], pipeline["std"] = [0.5], [0.5]
        todo.append("mean, std: the preset's are for colour; 0.5 is a guess for this grey model")
    else:
        todo.append(
            f"check the {preset} preset against the model's evaluation code "
            "(resize_size or crop_pct, interpolation, mean, std)"
        )
    if pipeline.get("resize_backend") == "opencv" and not opencv_installed():
        todo.append("resize_backend opencv needs the extra: pip install 'edgeserve[opencv]'")
    if pipeline.get("resize") == "center_crop" and "crop_pct" not in pipeline:
        pipeline["resize_size"] = round(max(size) / DEFAULT_CROP_PCT)
    values = declared.to_dict()
    if preset is None:
        for key in ("resize", "interpolation", "channel_order", "scale", "mean", "std"):
            pipeline[key] = values[key]
    kept = sorted(key for key in pipeline if key in embedded)
    if preset and kept:  # the model's own metadata says so: it beats a generic preset
        pipeline.update({key: values[key] for key in kept})
        todo.append(f"kept the model's own {', '.join(kept)} over the {preset} preset")
    sidecar.update(pipeline)
    sidecar["output"] = _output(session, image.name, declared, size, todo)
    sidecar["exif_transpose"] = False
    sidecar["_todo"] = todo
    return sidecar, todo


def _output(session: ort.InferenceSession, name: str, declared, size, todo: list[str]) -> str:
    """probabilities when the model's scores already sum to 1, else logits; both to confirm."""
    if declared.sources["output"] != ASSUMED:
        return declared.output
    height, width = size
    channels = declared.channels
    shape = (
        (1, channels, height, width) if declared.layout == "NCHW" else (1, height, width, channels)
    )
    try:
        (scores,) = session.run(None, {name: np.full(shape, 0.5, dtype=np.float32)})
        scores = np.asarray(scores, dtype=np.float64)[0]
    except Exception:  # a model that cannot run on a grey image: leave the guess to the user
        scores = np.array([-1.0])
    if scores.min() >= 0 and abs(scores.sum() - 1) <= 1e-3:
        todo.append("output: scores on a grey test image sum to 1, so probabilities; confirm")
        return "probabilities"
    todo.append('output: logits get a softmax; use "sigmoid" for independent multi-label scores')
    return "logits"
