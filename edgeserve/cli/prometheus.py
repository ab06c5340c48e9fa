"""The rollout's counters read from Prometheus instead of each instance's /metrics."""

from __future__ import annotations

import time

from edgeserve.cli.scrape import Scrape, shadow_key
from edgeserve.client import ClientError

PROMETHEUS_QUERIES = {
    "requests": "sum by (variant, outcome) (edgeserve_inferences_total)",
    "run": 'sum by (variant, le) (edgeserve_inference_duration_seconds_bucket{stage="inference"})',
    "shadow": "sum by (a_version, b_version, result) (edgeserve_shadow_comparisons_total)",
    "feedback": "sum by (variant, outcome) (edgeserve_feedback_total)",
    "class_pairs": "sum by (a_label, b_label) (edgeserve_shadow_class_pairs_total)",
    "clients": "sum(edgeserve_step_clients)",
    "paired": "sum by (a_outcome, b_outcome) (edgeserve_feedback_paired_total)",
}


def prometheus_scrape(base: str) -> Scrape:
    """The same counters as a /metrics scrape, summed over every instance Prometheus scrapes."""
    import httpx  # here: the server's process loads this module too, and never needs it

    result = Scrape(at=time.monotonic())
    for name, query in PROMETHEUS_QUERIES.items():
        try:
            answer = httpx.get(f"{base}/api/v1/query", params={"query": query}, timeout=10)
            answer.raise_for_status()
            series = answer.json()["data"]["result"]
        except (httpx.HTTPError, ValueError, KeyError) as error:
            raise ClientError(
                f"cannot query Prometheus at {base} ({error}): check --prometheus"
            ) from None
        for item in series:
            labels, value = item["metric"], float(item["value"][1])
            variant = labels.get("variant", "")
            if name == "requests":
                result.requests[(variant, labels.get("outcome", ""))] = value
            elif name == "run":
                result.run_buckets[variant][float(labels["le"])] = value
            elif name == "shadow":
                result.shadow[shadow_key(labels)] = value
            elif name == "paired":
                result.paired[(labels.get("a_outcome", ""), labels.get("b_outcome", ""))] = value
            elif name == "clients":
                result.clients = value
            elif name == "class_pairs":
                result.class_pairs[(labels.get("a_label", ""), labels.get("b_label", ""))] = value
            else:
                result.feedback[(variant, labels.get("outcome", ""))] = value
    return result
