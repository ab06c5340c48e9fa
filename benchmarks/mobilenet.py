"""A MobileNetV2 (width 1.0, 224x224, 1000 classes) built with onnx.helper, random weights.

The architecture is the real one (Sandler et al. 2018): a 3x3 stem, 17 inverted residual
blocks (1x1 expand, 3x3 depthwise, 1x1 linear projection, residual add when shapes match),
ReLU6 as Clip(0, 6), a 1x1 conv to 1280 channels, global average pooling and a 1000-way
classifier. BatchNorm is folded into each conv's bias, as exported inference models are.
The weights are random (fixed numpy seed): the speed is what counts here, not the answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeserve.inference.description.vocabulary import IMAGENET_MEAN, IMAGENET_STD

OPSET = 17
IR_VERSION = 8
IMG_SIZE = 224
NUM_CLASSES = 1000
SEED = 20180113  # MobileNetV2's arXiv date: any fixed seed will do
BUILD_TAG = "v1"  # bump when the graph changes, so a stale cached file is rebuilt
# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


class _Graph:
    """Accumulates nodes and initializers; each helper returns its output's name."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def _weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        # He initialisation keeps activations in a sane range through 50 layers.
        std = np.sqrt(2.0 / fan_in)
        value = (self.rng.standard_normal(shape) * std).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def _bias(self, name: str, channels: int) -> str:
        value = (self.rng.standard_normal(channels) * 0.01).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def conv(self, x: str, c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> str:
        name = self._name("conv")
        w = self._weight(
            f"{name}_w", (c_out, c_in // groups, kernel, kernel), c_in // groups * kernel**2
        )
        b = self._bias(f"{name}_b", c_out)
        pad = kernel // 2
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, w, b],
                [name],
                name=name,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[pad, pad, pad, pad],
                group=groups,
            )
        )
        return name

    def relu6(self, x: str) -> str:
        name = self._name("relu6")
        self.nodes.append(
            helper.make_node("Clip", [x, "relu6_min", "relu6_max"], [name], name=name)
        )
        return name

    def add(self, a: str, b: str) -> str:
        name = self._name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [name], name=name))
        return name

    def inverted_residual(self, x: str, c_in: int, c_out: int, stride: int, expand: int) -> str:
        hidden = c_in * expand
        y = x
        if expand != 1:
            y = self.relu6(self.conv(y, c_in, hidden, 1, 1))
        y = self.relu6(self.conv(y, hidden, hidden, 3, stride, groups=hidden))  # depthwise
        y = self.conv(y, hidden, c_out, 1, 1)  # linear bottleneck: no activation
        if stride == 1 and c_in == c_out:
            y = self.add(x, y)
        return y


def build_mobilenet_v2(seed: int = SEED) -> onnx.ModelProto:
    """MobileNetV2 with a dynamic batch dimension and ImageNet preprocessing metadata."""
    g = _Graph(np.random.default_rng(seed))
    g.initializers += [
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "relu6_min"),
        numpy_helper.from_array(np.array(6.0, dtype=np.float32), "relu6_max"),
    ]
    x = g.relu6(g.conv("image", 3, STEM_CHANNELS, 3, 2))
    channels = STEM_CHANNELS
    for expand, c_out, repeats, first_stride in INVERTED_RESIDUAL_SETTINGS:
        for i in range(repeats):
            x = g.inverted_residual(x, channels, c_out, first_stride if i == 0 else 1, expand)
            channels = c_out
    x = g.relu6(g.conv(x, channels, HEAD_CHANNELS, 1, 1))
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    g.nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1, name="flatten"))
    fc_w = (g.rng.standard_normal((HEAD_CHANNELS, NUM_CLASSES)) * 0.01).astype(np.float32)
    g.initializers += [
        numpy_helper.from_array(fc_w, "classifier_w"),
        numpy_helper.from_array(np.zeros(NUM_CLASSES, dtype=np.float32), "classifier_b"),
    ]
    g.nodes.append(
        helper.make_node(
            "Gemm", ["features", "classifier_w", "classifier_b"], ["logits"], name="classifier"
        )
    )
    graph = helper.make_graph(
        g.nodes,
        "mobilenet_v2_random",
        inputs=[
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, ["batch", 3, IMG_SIZE, IMG_SIZE]
            )
        ],
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", NUM_CLASSES])
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="edgeserve-benchmarks",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string="MobileNetV2 1.0 224 with random weights, for benchmarks only",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {
            "labels": json.dumps([f"imagenet_{i:04d}" for i in range(NUM_CLASSES)]),
            "layout": "NCHW",
            "channel_order": "RGB",
            "scale": repr(1.0 / 255.0),
            "mean": json.dumps(list(IMAGENET_MEAN)),
            "std": json.dumps(list(IMAGENET_STD)),
            "output": "logits",
            "img_size": str(IMG_SIZE),
        },
    )
    return model


def count_parameters(model: onnx.ModelProto) -> int:
    """Learned values in the model (its initializers, the two Clip bounds excluded)."""
    return sum(
        int(np.prod(init.dims))
        for init in model.graph.initializer
        if init.name not in ("relu6_min", "relu6_max")
    )


def ensure_mobilenet(cache_dir: Path) -> Path:
    """Path of the cached model, built (atomically) when missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"mobilenetv2-{BUILD_TAG}-seed{SEED}.onnx"
    if not path.is_file():
        model = build_mobilenet_v2()
        onnx.checker.check_model(model)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(model.SerializeToString(deterministic=True))
        tmp.replace(path)
    return path
