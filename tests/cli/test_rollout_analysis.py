"""The rollout gates: each passes, fails or waits for samples as its rule says."""

from __future__ import annotations

import pytest

from edgeserve.cli.analysis import (
    FAIL,
    PASS,
    SKIP,
    WAIT,
    Arm,
    Gates,
    StepWindow,
    evaluate,
    overall,
    step_window,
    wilson,
)
from edgeserve.cli.scrape import Scrape

GATES = Gates(
    max_error_rate=0.01,
    max_latency_ratio=1.5,
    min_latency_delta_ms=5.0,
    min_agreement=0.9,
    min_accuracy_delta=-0.02,
    min_samples=100,
)


def arm(requests=200, errors=0, run_ms=2.0, correct=0, judged=0) -> Arm:
    """An arm whose every run took about run_ms (one histogram bucket around it)."""
    bound = run_ms / 1000
    buckets = {bound * 0.5: 0.0, bound: requests - errors, float("inf"): requests - errors}
    return Arm(requests, errors, buckets, correct, judged)


def outcomes(window: StepWindow, percent: float = 20) -> dict[str, str]:
    return {r.gate: r.outcome for r in evaluate(window, GATES, percent)}


def window(a: Arm, b: Arm, agree=200, compared=200) -> StepWindow:
    return StepWindow({"A": a, "B": b}, agree, compared)


def test_wilson_interval_matches_the_textbook_value():
    low, high = wilson(8, 10)  # Wilson 95 % for 8/10: [0.490, 0.943]
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 0) is None


def test_a_healthy_b_passes_every_gate():
    good = window(arm(correct=180, judged=200), arm(correct=182, judged=200))
    assert set(outcomes(good).values()) == {PASS}


def test_b_erroring_above_the_limit_fails():
    assert outcomes(window(arm(), arm(errors=5)))["error rate"] == FAIL


def test_b_slower_by_ratio_and_margin_fails_but_by_ratio_alone_passes():
    assert outcomes(window(arm(run_ms=2), arm(run_ms=20)))["p95 inference"] == FAIL
    assert outcomes(window(arm(run_ms=0.5), arm(run_ms=2)))["p95 inference"] == PASS


def test_low_agreement_fails():
    assert outcomes(window(arm(), arm(), agree=100, compared=200))["shadow agreement"] == FAIL


def test_worse_accuracy_beyond_the_delta_fails():
    worse = window(arm(correct=190, judged=200), arm(correct=170, judged=200))
    assert outcomes(worse)["accuracy (feedback)"] == FAIL


def test_too_few_samples_waits_instead_of_judging():
    few = window(arm(requests=50), arm(requests=50, errors=10), compared=10)
    assert outcomes(few)["error rate"] == WAIT
    assert overall(evaluate(few, GATES, 20)) == WAIT


def test_without_feedback_the_accuracy_gate_does_not_apply():
    assert outcomes(window(arm(), arm()))["accuracy (feedback)"] == SKIP


def test_at_100_percent_gates_that_need_a_do_not_apply():
    judged = outcomes(window(arm(requests=0), arm()), percent=100)
    assert judged["p95 inference"] == SKIP and judged["shadow agreement"] == SKIP
    assert judged["error rate"] == PASS


def test_a_failure_outranks_waiting():
    mixed = window(arm(), arm(errors=50), compared=0)
    assert overall(evaluate(mixed, GATES, 20)) == FAIL


def test_the_window_sums_increases_over_instances_and_survives_a_restart():
    def scrape(ok: float, error: float) -> Scrape:
        return Scrape(at=0, requests={("B", "ok"): ok, ("B", "error"): error})

    pairs = [(scrape(100, 0), scrape(150, 5)), (scrape(500, 9), scrape(20, 1))]  # 2nd restarted
    b = step_window(pairs).arms["B"]
    assert (b.requests, b.errors) == (76, 6)
