"""Two models side by side on the same inputs: file size, in-process images/s, and how often
they agree (`edgeserve models quantize` reports it for the fp32 model and its int8 copy)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgeserve.inference.model import Model

ROUNDS = 3
"""Timing alternates between the models, so load from other processes hits both alike."""


@dataclass(frozen=True)
class Comparison:
    sizes: tuple[int, int]
    """File sizes in bytes, (first, second)."""
    images_per_s: tuple[float, float]
    """One image per run, on the same held-out inputs."""
    images: int
    """How many held-out images agreement is measured on."""
    agreeing: int
    """Images whose top-1 class is the same for both."""
    max_delta: float
    """The largest |Δ probability| over every class of every held-out image."""

    @property
    def agreement(self) -> float:
        return self.agreeing / self.images

    @property
    def speedup(self) -> float:
        return self.images_per_s[1] / self.images_per_s[0]


def compare(first: Model, second: Model, inputs: list[np.ndarray], seconds: float) -> Comparison:
    """Measure both models on `inputs` (model input tensors), spending about `seconds`."""
    ones = [first.run(x)[0] for x in inputs]
    twos = [second.run(x)[0] for x in inputs]
    agreeing = sum(int(np.argmax(a) == np.argmax(b)) for a, b in zip(ones, twos, strict=True))
    max_delta = max(float(np.abs(a - b).max()) for a, b in zip(ones, twos, strict=True))
    runs, spent = [0, 0], [0.0, 0.0]
    budget = seconds / (2 * ROUNDS)
    for _ in range(ROUNDS):
        for which, model in enumerate((first, second)):
            count, elapsed = _timed(model, inputs, budget)
            runs[which] += count
            spent[which] += elapsed
    return Comparison(
        sizes=(first.path.stat().st_size, second.path.stat().st_size),
        images_per_s=(runs[0] / spent[0], runs[1] / spent[1]),
        images=len(inputs),
        agreeing=agreeing,
        max_delta=max_delta,
    )


def _timed(model: Model, inputs: list[np.ndarray], budget: float) -> tuple[int, float]:
    """Runs over the inputs, in turn, until `budget` seconds have passed (at least one)."""
    count = 0
    start = time.perf_counter()
    while True:
        model.run(inputs[count % len(inputs)])
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return count, elapsed
