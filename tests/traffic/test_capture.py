"""The capture thread: an offer never waits for the disk; what cannot wait is dropped, counted."""

from __future__ import annotations

import asyncio
import fcntl
import time

from prometheus_client import REGISTRY

from edgeserve.inference.model import Prediction
from edgeserve.state.disagreement_store import Answer, DisagreementStore
from edgeserve.traffic.capture import MAX_PENDING, DisagreementCapture
from tests.support.images import ORANGE, image_bytes

A = Answer("aaaaaaaaaaaa", [Prediction(0, "red", 0.6)])
B = Answer("bbbbbbbbbbbb", [Prediction(3, "orange", 0.5)])


def captures(outcome: str) -> float:
    value = REGISTRY.get_sample_value("edgeserve_disagreement_captures_total", {"outcome": outcome})
    return value or 0.0


def test_offers_return_at_once_while_the_disk_is_held_and_the_excess_is_dropped(tmp_path):
    store = DisagreementStore(tmp_path, max_count=100, max_bytes=10_000_000)
    capture = DisagreementCapture(store, enabled=True)
    dropped_before, kept_before = captures("dropped"), captures("kept")
    image = image_bytes(ORANGE)
    with open(tmp_path / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker holds the folder: writes must wait
        started = time.perf_counter()
        for n in range(MAX_PENDING + 12):
            capture.offer(image, A, B, f"t-{n}")
        offering = time.perf_counter() - started
        fcntl.flock(lock, fcntl.LOCK_UN)
    asyncio.run(capture.close())
    assert offering < 0.5, f"{MAX_PENDING + 12} offers took {offering:.3f} s"
    assert captures("dropped") - dropped_before == 12
    assert captures("kept") - kept_before == MAX_PENDING
    assert len(store.records()) == MAX_PENDING


def test_with_capture_off_an_offer_writes_nothing(tmp_path):
    capture = DisagreementCapture(DisagreementStore(tmp_path / "d", 100, 10_000_000), False)
    capture.offer(image_bytes(ORANGE), A, B, "t-1")
    asyncio.run(capture.close())
    assert not (tmp_path / "d").exists()
