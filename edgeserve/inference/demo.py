"""Demo models vA/vB: classify an image's mean colour by its nearest prototype colour.

Run `python -m edgeserve.inference.demo [OUT_DIR]` to (re)write vA.onnx and vB.onnx.
The output is byte-for-byte reproducible: no timestamps, no randomness, fixed opset.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; pinned so the bytes never drift
IMG_SIZE = 64

BASE_COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (255, 0, 0)),
    ("green", (0, 255, 0)),
    ("blue", (0, 0, 255)),
    ("yellow", (255, 255, 0)),
    ("cyan", (0, 255, 255)),
    ("magenta", (255, 0, 255)),
    ("white", (255, 255, 255)),
    ("black", (0, 0, 0)),
)
ORANGE = ("orange", (255, 140, 0))

# vB knows orange and is less sharp, so shadow comparison sees label and score differences.
VARIANTS: dict[str, dict] = {
    "vA": {"colours": BASE_COLOURS, "temperature": 12.0},
    "vB": {"colours": (*BASE_COLOURS, ORANGE), "temperature": 8.0},
}


def build_demo_model(variant: str) -> bytes:
    """Serialized ONNX bytes of demo model `variant` ("vA" or "vB")."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown demo variant {variant!r}: choose one of {sorted(VARIANTS)}")
    spec = VARIANTS[variant]
    labels = [name for name, _ in spec["colours"]]
    prototypes = np.array([rgb for _, rgb in spec["colours"]], dtype=np.float32) / np.float32(255)
    num_classes = len(labels)

    # -T * |x - p|^2 = T * (2 x.p - |p|^2) - T * |x|^2; the last term is the same for every
    # class, so softmax over T * (2 x.p - |p|^2) ranks classes by nearest prototype.
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(2.0 * prototypes.T), "prototypes_x2_t"),
        numpy_helper.from_array((prototypes**2).sum(axis=1).astype(np.float32), "prototype_norms"),
        numpy_helper.from_array(np.array(spec["temperature"], dtype=np.float32), "temperature"),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["mean_colour_4d"], name="mean_colour"),
        helper.make_node("Flatten", ["mean_colour_4d"], ["mean_colour"], axis=1, name="flatten"),
        helper.make_node("MatMul", ["mean_colour", "prototypes_x2_t"], ["dot_x2"], name="dot"),
        helper.make_node("Sub", ["dot_x2", "prototype_norms"], ["closeness"], name="closeness"),
        helper.make_node("Mul", ["closeness", "temperature"], ["logits"], name="sharpen"),
    ]
    graph = helper.make_graph(
        nodes,
        f"edgeserve_demo_{variant}",
        inputs=[
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, ["batch", 3, "height", "width"]
            )
        ],
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", num_classes])
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="edgeserve",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=f"edgeserve demo {variant}: nearest-prototype colour of the image mean",
    )
    model.ir_version = IR_VERSION
    metadata = {
        "labels": json.dumps(labels),
        "layout": "NCHW",
        "channel_order": "RGB",
        "scale": repr(1.0 / 255.0),
        "mean": json.dumps([0.0, 0.0, 0.0]),
        "std": json.dumps([1.0, 1.0, 1.0]),
        "output": "logits",
        "img_size": str(IMG_SIZE),
    }
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)


def write_demo_models(out_dir: Path) -> list[Path]:
    """Write vA.onnx and vB.onnx into out_dir (created if missing); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for variant in VARIANTS:
        target = out_dir / f"{variant}.onnx"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(build_demo_model(variant))
        tmp.replace(target)  # atomic: a running server never reads a half-written model
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI: python -m edgeserve.inference.demo [OUT_DIR] (default models/)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print("usage: python -m edgeserve.inference.demo [OUT_DIR]  (default: models/)")
        return 0 if args and args[0] in ("-h", "--help") else 2
    out_dir = Path(args[0]) if args else Path("models")
    try:
        paths = write_demo_models(out_dir)
    except OSError as exc:
        print(f"cannot write demo models to {out_dir} ({exc.strerror or exc}): check the folder")
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
