"""Fixtures for the inference tests: images made in memory and tiny ONNX models."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The committed demo models."""
    return REPO_ROOT / "models"


@pytest.fixture
def encode() -> Callable[..., bytes]:
    """encode(image, fmt="PNG", **save_args) -> file bytes."""

    def _encode(image: Image.Image, fmt: str = "PNG", **save_args) -> bytes:
        buf = io.BytesIO()
        image.save(buf, fmt, **save_args)
        return buf.getvalue()

    return _encode


@pytest.fixture
def solid() -> Callable[..., bytes]:
    """solid((r, g, b), fmt="PNG", size=(48, 40)) -> file bytes of a one-colour image."""

    def _solid(rgb: tuple[int, int, int], fmt: str = "PNG", size=(48, 40)) -> bytes:
        buf = io.BytesIO()
        extra = {"quality": 95} if fmt == "JPEG" else {}
        Image.new("RGB", size, rgb).save(buf, fmt, **extra)
        return buf.getvalue()

    return _solid


def _chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


@pytest.fixture
def raw_png() -> Callable[..., bytes]:
    """raw_png(width, height, bit_depth, colour_type, rows=None) -> PNG bytes built by hand.

    `rows` is the unfiltered scanline bytes (without filter bytes); None writes no IDAT at all,
    so a header can claim any size without a single pixel existing.
    """

    def _raw_png(
        width: int, height: int, bit_depth: int, colour_type: int, rows: bytes | None = None
    ) -> bytes:
        ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
        out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
        if rows is not None:
            stride = len(rows) // height
            filtered = b"".join(
                b"\x00" + rows[y * stride : (y + 1) * stride] for y in range(height)
            )
            out += _chunk(b"IDAT", zlib.compress(filtered))
        return out + _chunk(b"IEND", b"")

    return _raw_png


@pytest.fixture
def tiny_model(tmp_path: Path) -> Callable[..., Path]:
    """tiny_model(...) -> path of a mean-colour classifier over red/green/blue prototypes.

    Options: layout ("NCHW"/"NHWC"), size (None = dynamic H/W), batch (None = dynamic),
    output ("logits"/"probabilities": a Softmax node is added for probabilities),
    channel_order (prototypes are stored in that order), metadata (dict of metadata_props;
    lists are JSON-encoded), name (file stem).
    """

    def _tiny_model(
        *,
        layout: str = "NCHW",
        size: int | None = None,
        batch: int | None = None,
        output: str = "logits",
        channel_order: str = "RGB",
        metadata: dict | None = None,
        name: str = "tiny",
    ) -> Path:
        rgb = np.eye(3, dtype=np.float32)  # red, green, blue prototypes in 0..1
        protos = rgb[:, ::-1] if channel_order == "BGR" else rgb
        hw = size if size is not None else "side"
        n = batch if batch is not None else "batch"
        if layout == "NCHW":
            shape, axes = [n, 3, hw, hw], [2, 3]
        else:
            shape, axes = [n, hw, hw, 3], [1, 2]
        scores = "logits" if output == "logits" else "raw_logits"
        nodes = [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=axes, keepdims=0),
            helper.make_node("MatMul", ["mean", "protos_x2_t"], ["dot"]),
            helper.make_node("Sub", ["dot", "norms"], ["close"]),
            helper.make_node("Mul", ["close", "temp"], [scores]),
        ]
        if output == "probabilities":
            nodes.append(helper.make_node("Softmax", ["raw_logits"], ["logits"], axis=1))
        graph = helper.make_graph(
            nodes,
            "tiny",
            [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [n, 3])],
            initializer=[
                numpy_helper.from_array(np.ascontiguousarray(2 * protos.T), "protos_x2_t"),
                numpy_helper.from_array((protos**2).sum(axis=1), "norms"),
                numpy_helper.from_array(np.array(10.0, dtype=np.float32), "temp"),
            ],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        props = {
            key: json.dumps(value) if isinstance(value, list) else str(value)
            for key, value in (metadata or {}).items()
        }
        if props:
            helper.set_model_props(model, props)
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(model.SerializeToString())
        return path

    return _tiny_model
