"""Small ONNX models built in tests: ones that break in the ways real models break."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save_model

LABELS = ["red", "green", "blue", "yellow", "cyan", "magenta", "white", "black"]
COLOUR_META = {
    "labels": json.dumps(LABELS),
    "layout": "NCHW",
    "scale": str(1 / 255),
    "mean": "[0, 0, 0]",
    "std": "[1, 1, 1]",
    "output": "logits",
    "img_size": "32",
}


def save_fails_on_real_images(path: Path) -> Path:
    """Passes warm-up (a zero image) but fails at run time on any non-black image."""
    return save_fails_from_brightness(path, 1)


def save_fails_from_brightness(path: Path, brightness: int) -> Path:
    """Fails at run time, deterministically, on every image with a pixel of `brightness` or
    more (0 to 255, with `scale` 1/255); answers the rest like a mean-colour classifier.

    Its output is multiplied by table[int(1000 * max(x))], and the table holds only the
    elements below `brightness`, so ONNX Runtime raises an out-of-bounds Gather from there.
    """
    table = np.ones(max(1, math.ceil(brightness * 1000 / 255) - 1), dtype=np.float32)
    weights = np.random.default_rng(0).normal(size=(3, len(LABELS))).astype(np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["logits_raw"]),
        helper.make_node("ReduceMax", ["image"], ["peak"], keepdims=0),
        helper.make_node("Mul", ["peak", "thousand"], ["scaled"]),
        helper.make_node("Cast", ["scaled"], ["index"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["index", "axis0"], ["indices"]),
        helper.make_node("Gather", ["table", "indices"], ["factor"]),
        helper.make_node("Mul", ["logits_raw", "factor"], ["logits"]),
    ]
    initializers = [
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(np.array(1000.0, dtype=np.float32), "thousand"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(table, "table"),
    ]
    graph = helper.make_graph(
        nodes,
        "fails_on_real_images",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, COLOUR_META)
    save_model(model, str(path))
    return path


def save_nhwc_probabilities(path: Path, size: int = 32) -> Path:
    """A fixed-size NHWC classifier with softmax inside: mean colour against prototypes."""
    prototypes = np.array(
        [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1], [0, 0, 0]],
        dtype=np.float32,
    )
    nodes = [
        helper.make_node("ReduceMean", ["pixels", "axes"], ["mean"], keepdims=0),
        helper.make_node("MatMul", ["mean", "twice_prototypes"], ["dots"]),
        helper.make_node("Sub", ["dots", "norms"], ["closeness"]),
        helper.make_node("Mul", ["closeness", "temperature"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    initializers = [
        numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes"),
        numpy_helper.from_array(2 * prototypes.T, "twice_prototypes"),
        numpy_helper.from_array((prototypes**2).sum(axis=1), "norms"),
        numpy_helper.from_array(np.array(10.0, dtype=np.float32), "temperature"),
    ]
    graph = helper.make_graph(
        nodes,
        "nhwc_probabilities",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, size, size, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, len(LABELS)])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    helper.set_model_props(
        model, {**COLOUR_META, "layout": "NHWC", "output": "probabilities", "img_size": str(size)}
    )
    save_model(model, str(path))
    return path


def save_slow(path: Path, img_size: int = 1024, channels: int = 64) -> Path:
    """A colour classifier that takes long to run: a wide 7x7 convolution over a large image.

    Slow on purpose and by arithmetic, not by sleeping, so requests really are in flight."""
    rng = np.random.default_rng(0)
    kernels = rng.normal(size=(channels, 3, 7, 7)).astype(np.float32) / 100
    weights = rng.normal(size=(channels, len(LABELS))).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "kernels"], ["features"], pads=[3, 3, 3, 3]),
        helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])],
        initializer=[
            numpy_helper.from_array(kernels, "kernels"),
            numpy_helper.from_array(weights, "weights"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {**COLOUR_META, "img_size": str(img_size)})
    save_model(model, str(path))
    return path


def save_more_classes_than_labels(path: Path, classes: int = len(LABELS) + 1) -> Path:
    """Declares a dynamic class dimension and 8 labels, but outputs `classes` scores."""
    weights = np.random.default_rng(0).normal(size=(3, classes)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        ],
        "more_classes_than_labels",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "classes"])],
        initializer=[numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, COLOUR_META)
    save_model(model, str(path))
    return path


def save_colour_model(path: Path, work: int = 0, size: int = 64) -> Path:
    """A mean-colour classifier; `work` extra 32-channel convolutions change its cost, never
    its answers (their result is multiplied by 0), so models differing only in `work` are a
    B as right as A and slower in proportion."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(3, len(LABELS))).astype(np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["answer"]),
    ]
    initializers = [numpy_helper.from_array(weights, "weights")]
    if work:
        channels = 32
        initializers += [
            numpy_helper.from_array(rng.normal(size=(channels, 3, 3, 3)).astype(np.float32), "w0"),
            numpy_helper.from_array(
                rng.normal(size=(channels, channels, 3, 3)).astype(np.float32) * 0.05, "wn"
            ),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ]
        nodes.append(helper.make_node("Conv", ["image", "w0"], ["h0"], pads=[1, 1, 1, 1]))
        for step in range(work):
            nodes += [
                helper.make_node("Relu", [f"h{step}"], [f"r{step}"]),
                helper.make_node("Conv", [f"r{step}", "wn"], [f"h{step + 1}"], pads=[1, 1, 1, 1]),
            ]
        nodes += [
            helper.make_node("ReduceMean", [f"h{work}"], ["busy"], keepdims=0),
            helper.make_node("Mul", ["busy", "zero"], ["nothing"]),
            helper.make_node("Add", ["answer", "nothing"], ["logits"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["answer"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        f"colour_work_{work}",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {**COLOUR_META, "img_size": str(size)})
    save_model(model, str(path))
    return path


def save_many_labels(path: Path, classes: int = 100, seed: int = 0) -> Path:
    """A classifier of 8x8 images into `classes` labels (l0, l1, ...) by a random projection of
    the pixels: noise images spread its answers over nearly every label; another `seed` gives
    a B with the same labels that answers otherwise."""
    weights = np.random.default_rng(seed).normal(size=(3 * 8 * 8, classes)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        ],
        "many_labels",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=[numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    labels = json.dumps([f"l{i}" for i in range(classes)])
    helper.set_model_props(model, {**COLOUR_META, "labels": labels, "img_size": "8"})
    save_model(model, str(path))
    return path
