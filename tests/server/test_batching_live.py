"""Dynamic micro-batching through a running server (BATCH_MAX_SIZE > 1)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.images import ORANGE, image_b64
from tests.support.server import running_server

MAX_WAIT_MS = 2000
# Four images whose answers differ, so a row given to the wrong request shows.
EXPECTED = {(255, 0, 0): "red", (0, 255, 0): "green", (0, 0, 255): "blue", ORANGE: "yellow"}


@pytest.fixture(scope="module")
def batching():
    env = {"BATCH_MAX_SIZE": str(len(EXPECTED)), "BATCH_MAX_WAIT_MS": str(MAX_WAIT_MS)}
    with running_server(MODEL_VB_PATH="", **env) as server:
        yield server


def classify(url: str, colour: tuple[int, int, int]) -> dict:
    r = httpx.post(url + "/v1/infer", json={"image_b64": image_b64(colour)}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_lone_request_waits_for_its_batch_to_fill(batching):
    answer = classify(batching.url, (255, 0, 0))
    assert answer["timings_ms"]["inference"] >= MAX_WAIT_MS, answer["timings_ms"]


def test_requests_that_arrive_together_share_one_batch_and_each_gets_its_own_answer(batching):
    with ThreadPoolExecutor(len(EXPECTED)) as pool:
        answers = list(pool.map(lambda colour: classify(batching.url, colour), EXPECTED))
    labels = [a["predictions"][0]["label"] for a in answers]
    assert labels == list(EXPECTED.values()), labels
    # A full batch runs at once: none of them waited out BATCH_MAX_WAIT_MS.
    waits = [a["timings_ms"]["inference"] for a in answers]
    assert max(waits) < MAX_WAIT_MS, waits
