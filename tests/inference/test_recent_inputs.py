"""The sample of recent inputs stays small however much traffic flows."""

from __future__ import annotations

import random

from PIL import Image

from edgeserve.inference.recent import MAX_SIDE, REFRESH_SECONDS, RecentInputs


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_sample_is_bounded_in_count_and_size():
    recent = RecentInputs(capacity=4, rng=random.Random(0))
    for index in range(200):
        recent.offer((64, 64), Image.new("RGB", (3000, 2000), (index, 0, 0)))
    samples = recent.snapshot()
    assert len(samples) == 4
    assert all(max(s.image.size) <= MAX_SIDE for s in samples)


def test_the_sample_keeps_refreshing_with_traffic():
    clock = Clock()
    recent = RecentInputs(capacity=4, rng=random.Random(0), clock=clock)
    for index in range(400):
        clock.now += REFRESH_SECONDS / 10
        recent.offer((32, 32), Image.new("RGB", (8, 8), (index % 256, 0, 0)))
    assert any(s.image.getpixel((0, 0))[0] > 4 for s in recent.snapshot())


def test_a_busy_worker_replaces_a_sample_at_most_once_a_refresh_period():
    clock = Clock()
    recent = RecentInputs(capacity=4, rng=random.Random(0), clock=clock)
    for index in range(4):
        recent.offer((32, 32), Image.new("RGB", (8, 8), (index, 0, 0)))
    for _ in range(3):  # three refresh periods of 1000 requests each
        clock.now += REFRESH_SECONDS
        for _ in range(1000):
            recent.offer((32, 32), Image.new("RGB", (8, 8), (255, 0, 0)))
    replaced = [s for s in recent.snapshot() if s.image.getpixel((0, 0))[0] == 255]
    assert 1 <= len(replaced) <= 3
