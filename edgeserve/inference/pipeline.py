"""The classify chain, written once: bytes -> image -> tensor -> run -> top-k.

The server, offline `edgeserve infer`, verification, shadow and the benchmarks' in-process limit
all classify through these functions, so every answer comes from the same steps. Each runs in
a thread, never on the event loop.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import PIL.Image
from PIL.Image import Image

from edgeserve.inference.model import Model, Prediction
from edgeserve.inference.preprocess import decode_image, draft_size, to_tensor

Size = tuple[int, int]
ImageSeen = Callable[[Size, Image], None]


def warm_decoders() -> None:
    """The first PNG and JPEG decodes load Pillow's plugins; pay that before /ready, not later."""
    for fmt in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        PIL.Image.new("RGB", (8, 8)).save(buffer, fmt)
        decode_image(buffer.getvalue(), 64)


@dataclass(frozen=True)
class Decoding:
    """How this process decodes uploads: the pixel cap, and JPEG draft mode on or off."""

    max_pixels: int
    jpeg_draft: bool = False

    def image(self, model: Model, data: bytes, size: Size) -> Image:
        draft = draft_size(model.meta, size) if self.jpeg_draft else None
        return decode_image(data, self.max_pixels, draft)


@dataclass(frozen=True)
class Upload:
    """An uploaded image file: its bytes as sent, and the picture they decode to."""

    data: bytes
    image: Image


@dataclass
class Classified:
    predictions: list[Prediction]
    upload: Upload | None
    """None for a preprocessed tensor: what shadow runs B on, and a captured disagreement keeps."""
    decode_seconds: float
    inference_seconds: float
    run_seconds: float
    """The session run alone (its CPU time with one ORT thread): what the canary guard compares."""


def prepare(
    model: Model, data: bytes, size: Size, decoding: Decoding, seen: ImageSeen | None = None
) -> tuple[Image, np.ndarray]:
    """Bytes -> image -> the model's input tensor; `seen` is shown the decoded image."""
    image = decoding.image(model, data, size)
    if seen is not None:
        seen(size, image)
    return image, to_tensor(image, model.meta, size)


def classify_image(model: Model, image: Image, size: Size, top_k: int) -> list[Prediction]:
    """An already decoded image's top-k answer at `size`."""
    return model.top_k(model.run(to_tensor(image, model.meta, size))[0], top_k)


def classify(
    model: Model,
    data: bytes,
    size: Size,
    top_k: int,
    decoding: Decoding,
    *,
    seen: ImageSeen | None = None,
    cpu_timed: bool = False,
) -> Classified:
    """The whole chain for one image file, timed stage by stage.

    With `cpu_timed` (one ORT thread, so the run happens on one thread) run_seconds is the
    run's CPU time: the model's own cost, without the wait for the CPU or the GIL behind a
    neighbour's huge decode (wall time has that, and a client can time it)."""
    started = time.perf_counter()
    image, tensor = prepare(model, data, size, decoding, seen)
    decoded = time.perf_counter()
    probabilities, timing = model.run_timed(tensor, cpu_timed)
    finished = time.perf_counter()
    return Classified(
        predictions=model.top_k(probabilities[0], top_k),
        upload=Upload(data, image),
        decode_seconds=decoded - started,
        # like the wait for an inference thread, the wait for a candidate's process is not
        # the model's time (the request's total has it)
        inference_seconds=finished - decoded - timing.queued,
        run_seconds=timing.seconds,
    )
