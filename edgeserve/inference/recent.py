"""A small sample of recent real inputs, and the check a model must pass on it before it serves.

A model that passes warm-up on a zero image can still fail on every real picture; running it
on a few pictures this worker really served catches that before any user does. The sample is
in memory only (never persisted, never logged), holds at most `capacity` images of at most
MAX_SIDE x MAX_SIDE pixels (about 150 KB each), and is refreshed as traffic flows: a random
member at most once every REFRESH_SECONDS, so a busy worker pays for it almost never.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from PIL.Image import Image

from edgeserve.errors import EdgeserveError, InferenceError, ModelHazard, VerificationFailed
from edgeserve.inference.model import Model
from edgeserve.inference.pipeline import classify_image
from edgeserve.inference.preprocess import to_rgb

MAX_SIDE = 224
"""Sampled images are shrunk to fit this square: real pixels, bounded memory."""
REFRESH_SECONDS = 1.0
"""Once the sample is full, a request replaces a random member when this long has passed since
the last replacement. Shrinking a 640x480 photo costs about 2.7 ms, more than decoding it."""


@dataclass(frozen=True)
class Sample:
    """One recent input: the (height, width) it was served at, and its image."""

    size: tuple[int, int]
    image: Image


class RecentInputs:
    """At most `capacity` recent inputs, one list per worker, safe to add to from any thread."""

    def __init__(
        self,
        capacity: int = 8,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.capacity = capacity
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.rng = rng or random.Random()
        self.clock = clock
        self.refreshed = float("-inf")

    def offer(self, size: tuple[int, int], image: Image) -> None:
        """Maybe keep this input; cheap when it is not kept."""
        with self.lock:
            if len(self.samples) >= self.capacity:
                now = self.clock()
                if now - self.refreshed < REFRESH_SECONDS:
                    return
                self.refreshed = now  # claimed here: concurrent requests do not all shrink
        small = to_rgb(image).copy()
        small.thumbnail((MAX_SIDE, MAX_SIDE))
        with self.lock:
            if len(self.samples) < self.capacity:
                self.samples.append(Sample(size, small))
            else:
                self.samples[self.rng.randrange(self.capacity)] = Sample(size, small)

    def snapshot(self) -> list[Sample]:
        with self.lock:
            return list(self.samples)


def sizes_to_check(model: Model, sample: Sample) -> set[tuple[int, int]]:
    """The model's own input size, and the sample's served size when the model takes it."""
    sizes = {model.size_for(None)}
    height, width = sample.size
    if height == width:
        # A size this model refuses is refused to clients too: nothing to check there.
        with contextlib.suppress(EdgeserveError):
            sizes.add(model.size_for(height))
    return sizes


def verify_on(model: Model, samples: list[Sample]) -> None:
    """Run `model` on each sample at the sizes it would serve it; VerificationFailed if any fails.

    Runs in a thread, never on the event loop."""
    failures: list[str] = []
    for sample in samples:
        for size in sizes_to_check(model, sample):
            try:
                classify_image(model, sample.image, size, top_k=1)
            except ModelHazard:
                raise  # not a failure to report: the model is unsafe (model_unsafe)
            except InferenceError as error:
                failures.append(error.message)
                break
    if failures:
        raise VerificationFailed(
            f"model {model.name} ({model.version}) passed warm-up but failed on {len(failures)} "
            f"of {len(samples)} recent real inputs ({failures[0]}): it was not loaded and the "
            "previous model keeps serving; fix the model and load it again"
        )
