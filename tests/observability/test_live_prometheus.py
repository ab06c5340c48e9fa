"""Every dashboard query and recording rule returns data from a real Prometheus.

The queries are the ones docs/operations.md section 5 lists; each must return a non-zero value
unless this traffic cannot make one (ZERO_IS_ALL_WE_CAN_SEE): a query that answers a constant 0
(a misspelt label under `or 0 *`, the rate of a series that never moves) fails.

One module fixture starts `edgeserve serve` (2 workers, shadow on, A/B 0.7/0.3, a low rate
limit) and a real Prometheus scraping it every second with the repo's recording rules, then
sends mixed traffic over a few scrapes. Each test then polls one query until it has data.
Skipped without `prometheus` on PATH, except in CI (CI=true), where that fails.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from edgeserve.cli.prometheus import prometheus_scrape
from tests.support.images import ORANGE, image_b64
from tests.support.server import Server, base_env, start_server, stop_server, wait_until_ready
from tests.support.waiting import wait_until

from .assets import DASHBOARD_PATH, RULES_PATH
from .live import (
    SCRAPE_JOB,
    Prometheus,
    QueryError,
    fail_if_dead,
    has_data,
    require_tool,
    running_prometheus,
    wait_for_scrapes,
)
from .promql import dashboard_expressions, recording_rule_names

# Per client address and worker: 60 requests at once, then 50/s. A traffic round stays well
# under that; a burst of 150 back-to-back requests outruns it unless each takes > 12 ms.
RATE_LIMIT_RPS = 50
RATE_LIMIT_BURST = 60
BURST = 150
ROUNDS = 4
BURST_ROUNDS = (0, 2)  # two bursts, scrapes apart, so the 429 counter rises inside the window
# Rates over 1m windows stay non-zero for a minute after the last round.
DATA_DEADLINE_SECONDS = 60

RED = {"image_b64": image_b64((255, 0, 0))}  # A and B agree: "red"
DISAGREE = {"image_b64": image_b64(ORANGE)}  # A says "yellow", B "orange"
BAD_BASE64 = {"image_b64": "not base64 at all!"}


def numbered(labels: list[str]) -> list[str]:
    """Test ids: a label used more than once gets #2, #3, ... from its second use."""
    seen: Counter[str] = Counter()
    ids = []
    for label in labels:
        seen[label] += 1
        ids.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return ids


# Series this traffic leaves at 0 on purpose, and why; every other query must show a non-zero.
ZERO_IS_ALL_WE_CAN_SEE = {
    "edgeserve_canary_rollbacks_total": "canary is off in this stack",
    "edgeserve_shadow_dropped_total": "sequential traffic stays under SHADOW_MAX_INFLIGHT",
    "edgeserve_shadow_errors_total": "model B never fails here",
    "edgeserve_shadow_no_common_label": "A and B share every label in this stack",
    "edgeserve_inference_errors": "every model answers; a bad image is not a model error",
    "edgeserve_inflight_requests": "nothing is in flight once the traffic is over",
}


def zero_allowed(expr: str) -> bool:
    return any(series in expr for series in ZERO_IS_ALL_WE_CAN_SEE)


def has_non_zero(samples: list[dict[str, Any]]) -> bool:
    return any(has_data([sample]) and float(sample["value"][1]) != 0 for sample in samples)


DASHBOARD_QUERIES = dashboard_expressions(DASHBOARD_PATH)
RULE_NAMES = recording_rule_names(RULES_PATH)


@dataclass
class LiveStack:
    server: Server
    prometheus: Prometheus
    deadline: float
    traffic: Counter[str]

    def wait_for_data(self, expr: str, non_zero: bool = False) -> list[dict[str, Any]]:
        """Poll expr until it has data (non-zero data if asked) or the shared deadline passes."""

        def samples() -> list[dict[str, Any]]:
            fail_if_dead(self.server, self.prometheus)
            try:
                return self.prometheus.query(expr)
            except QueryError as error:
                pytest.fail(
                    f"Prometheus rejects the query: {error}\n  query: {expr}", pytrace=False
                )

        return wait_until(
            f"{'non-zero ' if non_zero else ''}data from {expr} within "
            f"{DATA_DEADLINE_SECONDS} s of the traffic",
            samples,
            has_non_zero if non_zero else has_data,
            timeout=max(0.0, self.deadline - time.monotonic()),
            interval=0.5,
            context=lambda: f"traffic sent: {dict(self.traffic)}",
        )


def send_round(server: Server, burst: bool) -> Counter[str]:
    """Both variants, shadow agreements and disagreements, 4xx, admin calls, maybe a burst."""
    sent: Counter[str] = Counter()
    expected: list[tuple[str, httpx.Response, int]] = []
    # No cookie jar and no sticky cookie, so each request draws its variant afresh.
    with server.client() as client, server.admin() as admin:
        for _ in range(8):
            expected.append(("red", client.post("/v1/infer", json=RED), 200))
            expected.append(("orange", client.post("/v1/infer", json=DISAGREE), 200))
        # Ground truth for some answers: red is right, orange only when B answered. Few, to
        # stay inside the rate limit.
        for name, response, _ in expected[:6]:
            truth = "red" if name == "red" else "orange"
            feedback = {"feedback_token": response.json()["feedback_token"], "label": truth}
            expected.append(("feedback", client.post("/v1/feedback", json=feedback), 202))
        expected.append(("bad base64", client.post("/v1/infer", json=BAD_BASE64), 400))
        expected.append(("404", client.get("/v1/no-such-route"), 404))
        expected.append(("no token", client.get("/admin/config"), 401))
        expected.append(("admin get", admin.get("/admin/config"), 200))
        expected.append(
            ("admin set", admin.post("/admin/config", json={"shadow_enabled": True}), 200)
        )
        expected.append(("warmup", admin.post("/admin/warmup"), 200))
    for name, response, status in expected:
        assert response.status_code == status, (
            f"{name}: expected {status}, got {response.status_code} {response.text}"
            " (a 429 means the traffic round outran RATE_LIMIT_*)"
        )
        sent[name] += 1
        if name in ("red", "orange"):
            sent[f"variant {response.json()['variant']}"] += 1
            sent[f"{name} by {response.json()['variant']}"] += 1
    if burst:
        with server.client() as client:
            statuses = Counter(client.post("/v1/infer", json=RED).status_code for _ in range(BURST))
        assert statuses[429] > 0 and set(statuses) <= {200, 429}, (
            f"a burst of {BURST} should meet some 429s: {dict(statuses)}"
        )
        sent.update({f"burst {status}": n for status, n in statuses.items()})
    return sent


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveStack]:
    binary = require_tool("prometheus")
    env = base_env(
        WORKERS="2",
        SHADOW_ENABLED="true",
        AB_WEIGHT_A="0.7",
        AB_WEIGHT_B="0.3",
        STICKY_COOKIE="false",
        RATE_LIMIT_RPS=str(RATE_LIMIT_RPS),
        RATE_LIMIT_BURST=str(RATE_LIMIT_BURST),
        FEEDBACK_SECRET="live-prometheus-feedback-secret-0123456789",
    )
    server = start_server(env, wait_ready=False)
    target = server.url.removeprefix("http://")
    try:
        with running_prometheus(binary, tmp_path_factory.mktemp("prometheus"), target) as prom:
            wait_until_ready(server)
            # Counters must be seen before they rise: rate() ignores a series' first value.
            wait_for_scrapes(server, prom, 1)
            traffic: Counter[str] = Counter()
            for number in range(ROUNDS):
                fail_if_dead(server, prom)
                traffic += send_round(server, burst=number in BURST_ROUNDS)
                # Two more scrapes after the round (a slow burst spans scrapes of its own): each
                # round lands in its own scrape, and buckets refill.
                wait_for_scrapes(server, prom, prom.scrapes() + 2)
            assert traffic["variant A"] and traffic["variant B"], dict(traffic)
            assert traffic["orange by A"] and traffic["red by A"], dict(traffic)
            yield LiveStack(server, prom, time.monotonic() + DATA_DEADLINE_SECONDS, traffic)
    finally:
        stop_server(server)


def test_prometheus_scrapes_the_server(live):
    targets = [t for t in live.prometheus.targets() if t["labels"]["job"] == SCRAPE_JOB]
    assert [t["health"] for t in targets] == ["up"], targets
    samples = live.wait_for_data(f'up{{job="{SCRAPE_JOB}"}} == 1')
    assert len(samples) == 1, samples


@pytest.mark.parametrize(
    "expr",
    [expr for _, expr in DASHBOARD_QUERIES],
    ids=numbered([title for title, _ in DASHBOARD_QUERIES]),
)
def test_dashboard_query_returns_data(live, expr):
    live.wait_for_data(expr, non_zero=not zero_allowed(expr))


@pytest.mark.parametrize("rule", RULE_NAMES, ids=RULE_NAMES)
def test_recording_rule_returns_data(live, rule):
    samples = live.wait_for_data(rule, non_zero=not zero_allowed(rule))
    assert all(s["metric"].get("job") == SCRAPE_JOB for s in samples), samples


def test_the_rollout_reads_class_flips_from_prometheus_summed_over_workers(live):
    live.wait_for_data('edgeserve_shadow_class_pairs_total{a_label="yellow"}', non_zero=True)
    pairs = prometheus_scrape(live.prometheus.url).class_pairs
    assert pairs.get(("yellow", "orange"), 0) > 0 and pairs.get(("red", "red"), 0) > 0, pairs
