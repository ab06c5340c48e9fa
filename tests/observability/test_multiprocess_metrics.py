"""With WORKERS=2, /metrics counts every worker's requests exactly once (docs/operations.md 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.images import image_b64
from tests.support.server import Server, running_server

# At least this many inferences, more until both workers have served some.
MIN_INFERENCES = 40
MAX_INFERENCES = 400
RED = {"image_b64": image_b64((255, 0, 0))}


@dataclass
class Served:
    server: Server
    inferences: int
    samples: dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> (labels, value) for every sample of the exposition."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    text = httpx.get(url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def workers_in_log(output: str) -> set[int]:
    return {
        line["worker"]
        for line in map(json.loads, (t for t in output.splitlines() if t.startswith("{")))
        if line.get("event") == "request" and line.get("route") == "/v1/infer"
    }


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with running_server(WORKERS="2", AB_WEIGHT_A="0.5", AB_WEIGHT_B="0.5") as server:
        sent = 0
        while sent < MIN_INFERENCES or len(workers_in_log(server.output())) < 2:
            assert sent < MAX_INFERENCES, (
                f"{sent} requests over fresh connections all reached one worker: "
                f"{workers_in_log(server.output())}"
            )
            # A fresh connection each time, so the kernel spreads them over both workers.
            response = httpx.post(server.url + "/v1/infer", json=RED, timeout=30)
            assert response.status_code == 200, response.text
            sent += 1
        yield Served(server, sent, scrape(server.url))


def test_inference_counter_sums_every_worker(served):
    samples = served.samples["edgeserve_inferences_total"]
    assert sum(value for _, value in samples) == served.inferences, samples


def test_http_request_counter_sums_every_worker(served):
    samples = served.samples["edgeserve_http_requests_total"]
    ok_infers = [
        value
        for labels, value in samples
        if labels == {"route": "/v1/infer", "method": "POST", "status": "200"}
    ]
    assert ok_infers == [served.inferences], samples


def test_latency_histogram_counts_every_worker(served):
    counts = [
        value
        for labels, value in served.samples["edgeserve_inference_duration_seconds_count"]
        if labels["stage"] == "total"
    ]
    assert sum(counts) == served.inferences, counts


def test_gauges_are_not_summed_over_workers(served):
    # One series per label set, not one per worker, and the value of one worker.
    weights = served.samples["edgeserve_ab_weight"]
    assert sorted((labels["variant"], value) for labels, value in weights) == [
        ("A", 0.5),
        ("B", 0.5),
    ], weights
    assert served.samples["edgeserve_build_info"][0][1] == 1, served.samples["edgeserve_build_info"]
