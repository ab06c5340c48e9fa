"""The sample of recent inputs stays small however much traffic flows."""

from __future__ import annotations

import random

from PIL import Image

from edgeserve.inference.recent import MAX_SIDE, RecentInputs


def test_the_sample_is_bounded_in_count_and_size():
    recent = RecentInputs(capacity=4, rng=random.Random(0))
    for index in range(200):
        recent.offer((64, 64), Image.new("RGB", (3000, 2000), (index, 0, 0)))
    samples = recent.snapshot()
    assert len(samples) == 4
    assert all(max(s.image.size) <= MAX_SIDE for s in samples)


def test_the_sample_keeps_refreshing_with_traffic():
    recent = RecentInputs(capacity=4, rng=random.Random(0))
    for index in range(400):
        recent.offer((32, 32), Image.new("RGB", (8, 8), (index % 256, 0, 0)))
    assert any(s.image.getpixel((0, 0))[0] > 4 for s in recent.snapshot())
