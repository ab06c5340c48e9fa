"""One definition of shadow agreement, agree / (agree + disagree), from the same counters:
`edgeserve status`, the rollout gate (reading the instance, or Prometheus) and the recording
rule give the same figure, against a real server and a real Prometheus with the repo's rules.
Skipped without `prometheus` on PATH, except in CI (CI=true), where that fails."""

from __future__ import annotations

import re

import httpx
from typer.testing import CliRunner

from edgeserve.cli import app
from edgeserve.cli.analysis import Gates, evaluate, step_window
from edgeserve.cli.rollout import metric_reader
from edgeserve.cli.scrape import shadow_counts
from edgeserve.cli.status import scrape
from edgeserve.client import EdgeserveClient
from tests.support.images import ORANGE, image_b64
from tests.support.server import base_env, start_server, stop_server, wait_until_ready
from tests.support.waiting import wait_until

from .live import require_tool, running_prometheus, wait_for_scrapes

AGREED = 12  # red: A and B both say "red"
DISAGREED = 8  # orange: A says "yellow", B "orange"
RULE = "edgeserve_shadow_agreement:ratio_rate1m"
GATES = Gates(
    max_error_rate=0.05,
    max_latency_ratio=2.0,
    min_latency_delta_ms=5.0,
    min_agreement=0.5,
    min_accuracy_delta=None,
    min_samples=1,
)


def gate_figure(results) -> str:
    return next(r.b for r in results if r.gate == "shadow agreement")


def test_status_the_rollout_gate_and_the_recording_rule_give_one_agreement_figure(tmp_path):
    binary = require_tool("prometheus")
    env = base_env(
        SHADOW_ENABLED="true",
        SHADOW_MAX_INFLIGHT=str(AGREED + DISAGREED),  # none dropped: every answer is compared
        AB_WEIGHT_A="1",
        AB_WEIGHT_B="0",
        STICKY_COOKIE="false",
    )
    server = start_server(env, wait_ready=False)
    try:
        target = server.url.removeprefix("http://")
        with running_prometheus(binary, tmp_path / "prometheus", target) as prometheus:
            wait_until_ready(server)
            wait_for_scrapes(server, prometheus, 1)  # every outcome seen at 0 before it rises
            from_instance = metric_reader([server.url], None)
            from_prometheus = metric_reader([], prometheus.url)
            before_instance, before_prometheus = from_instance(), from_prometheus()
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for colour, times in (((255, 0, 0), AGREED), (ORANGE, DISAGREED)):
                    for _ in range(times):
                        sent = client.post("/v1/infer", json={"image_b64": image_b64(colour)})
                        assert sent.status_code == 200, sent.text
            with EdgeserveClient(server.url) as client:
                counts = wait_until(
                    "every shadow comparison counted",
                    lambda: shadow_counts(scrape(client)),
                    lambda counts: counts.compared == AGREED + DISAGREED,
                )
            wait_for_scrapes(server, prometheus, prometheus.scrapes() + 2)
            gate = evaluate(
                step_window(list(zip(before_instance, from_instance(), strict=True))), GATES, 50
            )
            gate_via_prometheus = evaluate(
                step_window(list(zip(before_prometheus, from_prometheus(), strict=True))),
                GATES,
                50,
            )
            rule = wait_until(
                "the recording rule", lambda: prometheus.query(RULE), lambda samples: samples
            )
        status = CliRunner().invoke(app, ["status", "--once", "--url", server.url])
    finally:
        stop_server(server)
    expected = AGREED / (AGREED + DISAGREED)
    assert (counts.agree, counts.disagree) == (AGREED, DISAGREED)
    assert f"shadow agreement {expected:.1%} of {AGREED + DISAGREED}" in status.stdout, status
    assert gate_figure(gate) == gate_figure(gate_via_prometheus) == f"{expected:.1%}"
    assert abs(float(rule[0]["value"][1]) - expected) < 1e-9, rule
    assert re.search(r"no common label 0\.0%", status.stdout), status.stdout
