"""Static int8 quantization of a model, calibrated on the user's own images
(`edgeserve models quantize`).

onnxruntime's own `quantize_static` does the work: QDQ format, per-channel int8 weights and
uint8 activations (the pair x86's int8 kernels are fastest at). Calibration images go through
the model's own description and preprocessing, exactly as the server would feed them, so the
activation ranges are the served ones. The model's metadata_props travel inside the file;
the sidecar is copied next to the result.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeserve.errors import EdgeserveError, ModelLoadError
from edgeserve.inference.metadata import sidecar_path
from edgeserve.inference.model import Model
from edgeserve.inference.preprocess import decode_image, to_tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class Split:
    """The images of a folder: those that calibrate and those that judge the result."""

    calibration: list[Path]
    held_out: list[Path]


def split_images(folder: Path, held_out_fraction: float) -> Split:
    """Every image in `folder`, sorted; an evenly spread `held_out_fraction` of them (at least
    one) is kept out of calibration, so agreement is measured on images it never saw."""
    if not folder.is_dir():
        raise EdgeserveError(f"calibration folder {folder} does not exist: give a folder of images")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(images) < 2:
        raise EdgeserveError(
            f"calibration folder {folder} has {len(images)} PNG or JPEG images: "
            "give at least 2 (some calibrate, the rest check the result)"
        )
    count = min(len(images) - 1, max(1, round(len(images) * held_out_fraction)))
    step = len(images) / count
    held = {int(i * step) for i in range(count)}
    return Split(
        calibration=[p for i, p in enumerate(images) if i not in held],
        held_out=[p for i, p in enumerate(images) if i in held],
    )


def model_inputs(model: Model, paths: list[Path]) -> list[np.ndarray]:
    """Each image as the model's input tensor, through the model's own preprocessing."""
    tensors = []
    for path in paths:
        try:
            image = decode_image(path.read_bytes(), MAX_PIXELS)
        except EdgeserveError as error:
            raise EdgeserveError(f"calibration image {path}: {error.message}") from None
        tensors.append(to_tensor(image, model.meta, model.size_for(None)))
    return tensors


def quantize(model: Model, calibration: list[np.ndarray], out: Path) -> None:
    """Write the int8 copy of `model` to `out`, and its sidecar next to it if it has one."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    name = model.session.get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    try:
        with _quiet_root_logger():
            quantize_static(
                str(model.path),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
    except Exception as error:  # onnxruntime raises many kinds; the operator needs the reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(
            f"onnxruntime could not quantize {model.path} ({reason}): check it loads with "
            "'edgeserve models inspect' and report the model if it does"
        ) from None
    sidecar = sidecar_path(model.path)
    if sidecar.is_file():
        shutil.copyfile(sidecar, sidecar_path(out))


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """quantize_static logs, on the root logger, a hint to run its pre-processing first (a
    shape inference that needs sympy); the model is quantized as it is served, and the speed
    measured afterwards says whether that was enough."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
