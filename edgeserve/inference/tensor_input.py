"""A client's own input tensor, instead of an image: checked against the model, then run.

FP32 is the model's input as it is; UINT8 is pixels already resized and laid out as the model
takes them, which get the model's own scale, mean and std (what to_tensor applies last)."""

from __future__ import annotations

import time

import numpy as np

from edgeserve.errors import InvalidTensor
from edgeserve.inference.model import Model
from edgeserve.inference.pipeline import Classified
from edgeserve.inference.preprocess import gain_and_offset

TENSOR_TYPES = ("FP32", "UINT8")


def input_shape(model: Model) -> list[int]:
    """The one input shape a tensor for `model` must have: a batch of one at its own size."""
    return list(model.input_shape(model.meta.input_size))


def model_input(model: Model, datatype: str, shape: list[int], values: np.ndarray) -> np.ndarray:
    """The float32 batch to run, from a tensor the client sent; InvalidTensor says what is wrong."""
    expected = input_shape(model)
    if shape != expected:
        raise InvalidTensor(
            f"tensor shape {shape} does not fit model {model.name} ({model.version}): "
            f"send one image as {expected}"
        )
    tensor = values.reshape(expected)
    if datatype == "FP32":
        if not np.isfinite(tensor).all():
            raise InvalidTensor("the FP32 tensor holds NaN or infinity: send finite values")
        return tensor.astype(np.float32, copy=False)
    return normalise(tensor, model)


def normalise(pixels: np.ndarray, model: Model) -> np.ndarray:
    """(pixel * scale - mean) / std per channel, in the model's layout."""
    gain, offset = gain_and_offset(model.meta)
    # In place on the one copy: each temporary of a 224x224 batch costs fresh pages
    tensor = pixels.astype(np.float32)
    tensor *= gain
    tensor -= offset
    return tensor


def classify_tensor(model: Model, tensor: np.ndarray, top_k: int, cpu_timed: bool) -> Classified:
    """Run a checked input tensor; nothing to decode. Runs in a thread, never on the loop."""
    started = time.perf_counter()
    probabilities, run_seconds = model.run_timed(tensor, cpu_timed)
    return Classified(
        predictions=model.top_k(probabilities[0], top_k),
        upload=None,
        decode_seconds=0.0,
        inference_seconds=time.perf_counter() - started,
        run_seconds=run_seconds,
    )
