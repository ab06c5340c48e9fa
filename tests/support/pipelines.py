"""Real preprocessing pipelines: a probe model and a sidecar for each, and the reference answer.

The reference implementations here are written from NumPy and Pillow primitives, following
each framework's own rules (torchvision, timm, Caffe, ultralytics-style letterbox), and never
call edgeserve's code: a test that compares edgeserve with them proves edgeserve exact.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

LABELS = ["cat", "dog", "fox", "owl", "yak"]
TOLERANCE = 1e-4
"""Issue 13's bound on |Δ probability| between edgeserve and an independent reference."""
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]
PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


@dataclass(frozen=True)
class Pipeline:
    name: str
    height: int
    width: int
    channels: int
    layout: str
    sidecar: dict[str, Any]


PIPELINES = {
    p.name: p
    for p in [
        Pipeline(
            "torchvision",
            224,
            224,
            3,
            "NCHW",
            {
                "input_size": 224,
                "resize": "center_crop",
                "resize_size": 256,
                "interpolation": "bilinear",
                "scale": "1/255",
                "mean": IMAGENET_MEAN,
                "std": IMAGENET_STD,
                "output": "logits",
            },
        ),
        Pipeline(
            "timm",
            224,
            224,
            3,
            "NCHW",
            {
                "input_size": 224,
                "resize": "center_crop",
                "crop_pct": 0.95,
                "interpolation": "bicubic",
                "scale": "1/255",
                "mean": IMAGENET_MEAN,
                "std": IMAGENET_STD,
                "output": "logits",
            },
        ),
        Pipeline(
            "caffe",
            224,
            224,
            3,
            "NCHW",
            {
                "input_size": 224,
                "resize": "center_crop",
                "resize_size": 256,
                "interpolation": "bilinear",
                "channel_order": "BGR",
                "scale": 1,
                "mean": CAFFE_MEAN_BGR,
                "std": 1,
                "output": "logits",
            },
        ),
        Pipeline(
            "letterbox320",
            320,
            320,
            3,
            "NHWC",
            {
                "input_size": 320,
                "resize": "letterbox",
                "pad_value": 255,
                "interpolation": "bilinear",
                "scale": "1/255",
                "mean": 0,
                "std": 1,
                "output": "logits",
            },
        ),
        Pipeline(
            "letterbox640",
            640,
            640,
            3,
            "NCHW",
            {
                "input_size": 640,
                "resize": "letterbox",
                "pad_value": 114,
                "interpolation": "bilinear",
                "scale": "1/255",
                "mean": 0,
                "std": 1,
                "output": "logits",
            },
        ),
        Pipeline(
            "grayscale28",
            28,
            28,
            1,
            "NCHW",
            {
                "input_size": 28,
                "color": "grayscale",
                "resize": "stretch",
                "interpolation": "bilinear",
                "scale": "1/255",
                "mean": 0.1307,
                "std": 0.3081,
                "output": "logits",
            },
        ),
        Pipeline(
            "nonsquare32x128",
            32,
            128,
            3,
            "NHWC",
            {
                "input_size": [32, 128],
                "layout": "NHWC",
                "resize": "stretch",
                "interpolation": "bicubic",
                "scale": "1/255",
                "mean": 0.5,
                "std": 0.5,
                "output": "logits",
            },
        ),
    ]
}


# --- probe model -------------------------------------------------------------------------


def save_probe_model(path: Path, pipeline: Pipeline, *, labels: list[str] | None = None) -> Path:
    """A fixed-size conv + linear classifier whose every score depends on every pixel's value
    and position, so any preprocessing difference shows in its probabilities. Writes the
    pipeline's sidecar (with labels) next to it."""
    labels = labels or LABELS
    rng = np.random.default_rng(sum(map(ord, pipeline.name)))
    c, h, w = pipeline.channels, pipeline.height, pipeline.width
    stride = 4
    filters = 8
    cells = filters * (h // stride) * (w // stride)
    units = 1 / 64 if pipeline.sidecar["scale"] == 1 else 1.0  # Caffe inputs span +-128
    kernel = rng.normal(0, units / math.sqrt(c * stride * stride), (filters, c, stride, stride))
    # Columns summing to zero ignore what all pixels share (ReLU's mean), and a few units of
    # spread keep the probabilities off 0 and 1, where they would hide differences.
    dense = rng.normal(0, 1, (cells, len(labels)))
    dense -= dense.mean(axis=0)
    dense *= _logit_spread(pipeline, kernel, dense) / math.sqrt(cells)
    return _save(path, pipeline, labels, kernel, dense)


def _logit_spread(pipeline: Pipeline, kernel, dense) -> float:
    """The factor that gives logits a spread of about 1.5 on a natural image."""
    buffer = io.BytesIO()
    natural_image(400, 300, seed=3).save(buffer, "PNG")
    tensor = reference_tensor(pipeline, buffer.getvalue())
    if pipeline.layout == "NHWC":
        tensor = tensor.transpose(0, 3, 1, 2)
    c, h, w = pipeline.channels, pipeline.height, pipeline.width
    stride = kernel.shape[-1]
    blocks = tensor[0].reshape(c, h // stride, stride, w // stride, stride)
    features = np.maximum(np.einsum("fcab,cyaxb->fyx", kernel, blocks), 0).reshape(-1)
    logits = features @ dense / math.sqrt(dense.shape[0])
    return 1.5 / float(logits.std())


def _save(path: Path, pipeline: Pipeline, labels: list[str], kernel, dense) -> Path:
    c, h, w = pipeline.channels, pipeline.height, pipeline.width
    stride = kernel.shape[-1]
    image_shape = [1, c, h, w] if pipeline.layout == "NCHW" else [1, h, w, c]
    nodes = []
    source = "image"
    if pipeline.layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]))
        source = "nchw"
    nodes += [
        helper.make_node("Conv", [source, "kernel"], ["conv"], strides=[stride, stride]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("Flatten", ["relu"], ["flat"]),
        helper.make_node("MatMul", ["flat", "dense"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        f"probe_{pipeline.name}",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, image_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, len(labels)])],
        initializer=[
            numpy_helper.from_array(kernel.astype(np.float32), "kernel"),
            numpy_helper.from_array(dense.astype(np.float32), "dense"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    sidecar = {**pipeline.sidecar, "labels": labels}
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))
    return path


def probabilities(path: Path, tensor: np.ndarray) -> np.ndarray:
    """Run the probe model straight through ONNX Runtime and softmax in float64."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"image": tensor.astype(np.float32)})
    logits = logits[0].astype(np.float64)
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


# --- test images -------------------------------------------------------------------------


def natural_image(width: int, height: int, seed: int) -> Image.Image:
    """Gradients, blocks and noise: detail at every scale, so resampling choices matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    base = np.stack(
        [
            127 + 120 * np.sin(x / (7 + seed)),
            127 + 120 * np.cos(y / 11),
            255 * (x + y) / (width + height),
        ],
        axis=-1,
    )
    for _ in range(12):
        x0, y0 = rng.integers(0, width - 10), rng.integers(0, height - 10)
        base[y0 : y0 + rng.integers(5, height // 2), x0 : x0 + rng.integers(5, width // 2)] = (
            rng.integers(0, 256, 3)
        )
    base += rng.normal(0, 12, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def sample_images() -> dict[str, bytes]:
    """A landscape PNG and a portrait JPEG with odd sizes (rounding in crops and pads)."""
    out = {}
    for name, (width, height, fmt, seed) in {
        "landscape.png": (500, 371, "PNG", 1),
        "portrait.jpg": (301, 457, "JPEG", 2),
    }.items():
        buffer = io.BytesIO()
        extra = {"quality": 90} if fmt == "JPEG" else {}
        natural_image(width, height, seed).save(buffer, fmt, **extra)
        out[name] = buffer.getvalue()
    return out


# --- independent reference implementations ------------------------------------------------


def _torchvision_resize(img: Image.Image, size: int, resample: int) -> Image.Image:
    # torchvision.transforms.functional_pil.resize with an int size
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    if short == size:
        return img
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return img.resize((new_w, new_h), resample)


def _torchvision_center_crop(arr: np.ndarray, th: int, tw: int) -> np.ndarray:
    # torchvision.transforms.functional.center_crop (Python round: half to even)
    h, w = arr.shape[:2]
    top = round((h - th) / 2.0)
    left = round((w - tw) / 2.0)
    return arr[top : top + th, left : left + tw]


def _letterbox(img: Image.Image, th: int, tw: int, pad: int, resample: int) -> np.ndarray:
    # ultralytics LetterBox (auto=False, scaleup=True, center=True)
    w, h = img.size
    r = min(th / h, tw / w)
    new_w, new_h = round(w * r), round(h * r)
    dw, dh = (tw - new_w) / 2, (th - new_h) / 2
    top, left = round(dh - 0.1), round(dw - 0.1)
    canvas = np.full((th, tw, 3), pad, dtype=np.uint8)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), resample)
    canvas[top : top + new_h, left : left + new_w] = np.asarray(img)
    return canvas


def _pil_luma(arr: np.ndarray) -> np.ndarray:
    # ITU-R 601-2 luma in Pillow's fixed-point form (L = R*299/1000 + G*587/1000 + B*114/1000)
    rgb = arr.astype(np.uint32)
    return ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16).astype(
        np.uint8
    )


def _layout(chw: np.ndarray, layout: str) -> np.ndarray:
    return chw[None] if layout == "NCHW" else chw.transpose(1, 2, 0)[None]


def reference_tensor(pipeline: Pipeline, data: bytes) -> np.ndarray:
    """The input each framework's own eval pipeline would build from these file bytes."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    name = pipeline.name
    mean = std = None
    if name in ("torchvision", "timm"):
        side = 256 if name == "torchvision" else math.floor(224 / 0.95)
        resample = PIL_FILTERS["bilinear" if name == "torchvision" else "bicubic"]
        arr = _torchvision_center_crop(
            np.asarray(_torchvision_resize(img, side, resample)), 224, 224
        )
        chw = arr.astype(np.float64).transpose(2, 0, 1) / 255.0  # ToTensor
        mean, std = IMAGENET_MEAN, IMAGENET_STD  # Normalize
    elif name == "caffe":
        arr = _torchvision_center_crop(
            np.asarray(_torchvision_resize(img, 256, PIL_FILTERS["bilinear"])), 224, 224
        )
        chw = arr[..., ::-1].astype(np.float64).transpose(2, 0, 1)  # BGR, 0..255
        mean, std = CAFFE_MEAN_BGR, [1.0, 1.0, 1.0]
    elif name.startswith("letterbox"):
        size, pad = (320, 255) if name == "letterbox320" else (640, 114)
        arr = _letterbox(img, size, size, pad, PIL_FILTERS["bilinear"])
        chw = arr.astype(np.float64).transpose(2, 0, 1) / 255.0
    elif name == "grayscale28":
        grey = Image.fromarray(_pil_luma(np.asarray(img)), "L")
        arr = np.asarray(grey.resize((28, 28), PIL_FILTERS["bilinear"]))
        chw = (arr.astype(np.float64) / 255.0)[None]
        mean, std = [0.1307], [0.3081]
    elif name == "nonsquare32x128":
        arr = np.asarray(img.resize((128, 32), PIL_FILTERS["bicubic"]))
        chw = arr.astype(np.float64).transpose(2, 0, 1) / 255.0
        mean, std = [0.5] * 3, [0.5] * 3
    else:
        raise ValueError(name)
    if mean is not None:
        chw = (chw - np.asarray(mean)[:, None, None]) / np.asarray(std)[:, None, None]
    return _layout(chw, pipeline.layout)
