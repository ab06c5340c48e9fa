"""Read a live server's /metrics the way Prometheus would."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import Server


def metric_sum(server: Server, name: str, **labels: str) -> float:
    """The sum of every sample called `name` whose labels include `labels`."""
    with server.client() as client:
        text = client.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
