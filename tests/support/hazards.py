"""Hazardous candidates: the demo model vA plus one branch that is quiet on the all-zero warm-up
input and misbehaves on any real picture (its brightest pixel is above zero).

Each adds `extra` (zero on a black image) to vA's logits, so vA's labels and answers hold until
the branch fires: a memory bomb, a hang, NaN scores, or seconds of work per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeserve.inference.demo import build_demo_model


def _with_branch(path: Path, name: str, nodes: list[onnx.NodeProto], initializers: list) -> Path:
    """vA whose logits get `extra` added; the branch reads `peak`, the image's brightest value."""
    model = onnx.load_model_from_string(build_demo_model("vA"))
    for node in model.graph.node:
        if "logits" in node.output:
            node.output[0] = "clean_logits"
    model.graph.node.extend(
        [
            helper.make_node("ReduceMax", ["image"], ["peak"], keepdims=0),
            *nodes,
            helper.make_node("Add", ["clean_logits", "extra"], ["logits"]),
        ]
    )
    model.graph.initializer.extend(initializers)
    model.graph.name = name
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def _scalar(name: str, value: float) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=np.float32), name)


ONE = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")


def save_memory_bomb(path: Path, gigabytes: float = 6.4) -> Path:
    """Allocates `gigabytes` (a float32 tensor of ones) on a real image; nothing on a black one."""
    nodes = [
        helper.make_node("Mul", ["peak", "floats"], ["wanted"]),
        helper.make_node("Cast", ["wanted"], ["count"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["count", "one_dim"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["ballast"], value=ONE),
        helper.make_node("ReduceSum", ["ballast"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["extra"]),
    ]
    initializers = [
        _scalar("floats", gigabytes * 1e9 / 4),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one_dim"),
        _scalar("zero", 0.0),
    ]
    return _with_branch(path, "memory_bomb", nodes, initializers)


def save_looping(
    path: Path, iterations_per_unit: float, name: str, *, on_black: bool = False
) -> Path:
    """Runs a loop of `iterations_per_unit` x the brightest pixel (0 to 1) additions; with
    `on_black`, x (1 - the brightest pixel): the warm-up's black input loops the most."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["sum_in", "step"], ["sum_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("sum_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("sum_out", TensorProto.FLOAT, []),
        ],
        initializer=[_scalar("step", 1.0)],
    )
    nodes = [
        helper.make_node("Sub", ["unit", "peak"], ["darkness"]),
        helper.make_node("Mul", ["darkness" if on_black else "peak", "iterations"], ["wanted"]),
        helper.make_node("Cast", ["wanted"], ["trips"], to=TensorProto.INT64),
        helper.make_node("Loop", ["trips", "true", "zero"], ["sum"], body=body),
        helper.make_node("Mul", ["sum", "zero"], ["extra"]),
    ]
    initializers = [
        _scalar("iterations", iterations_per_unit),
        _scalar("unit", 1.0),
        numpy_helper.from_array(np.array(True), "true"),
        _scalar("zero", 0.0),
    ]
    return _with_branch(path, name, nodes, initializers)


def save_hanging(path: Path) -> Path:
    """Loops about forever (10^15 iterations) on a real image."""
    return save_looping(path, 1e15, "hanging")


def save_hanging_in_warm_up(path: Path) -> Path:
    """Loops about forever on the all-black warm-up input; answers at once on a bright image."""
    return save_looping(path, 1e15, "hanging_in_warm_up", on_black=True)


def save_slow(path: Path, seconds: float = 2.0) -> Path:
    """Takes about `seconds` of one core per bright image (a million loop steps take ~1 s)."""
    return save_looping(path, seconds * 1e6, "slow")


def save_nan(path: Path) -> Path:
    """Answers NaN scores on a real image: sqrt(-peak)."""
    nodes = [
        helper.make_node("Neg", ["peak"], ["negative"]),
        helper.make_node("Sqrt", ["negative"], ["extra"]),
    ]
    return _with_branch(path, "nan_scores", nodes, [])
