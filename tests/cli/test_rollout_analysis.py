"""The rollout gates: each passes, fails or waits for samples as its rule says."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edgeserve.cli.analysis import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    SKIP,
    WAIT,
    Arm,
    Gates,
    StepWindow,
    accuracy_verdict,
    evaluate,
    failure_reason,
    overall,
    step_window,
    wilson,
)
from edgeserve.cli.looks import ONE_SIDED_ALPHA, StepLooks
from edgeserve.cli.rollout_simulation import run_buckets
from edgeserve.cli.scrape import Scrape
from edgeserve.observability.metrics import RUN_BUCKETS

GATES = Gates(
    max_error_rate=0.01,
    max_latency_ratio=1.5,
    min_latency_delta_ms=5.0,
    min_agreement=0.9,
    min_accuracy_delta=-0.02,
    min_samples=100,
)
OPERATOR = replace(GATES, min_accuracy_delta=-0.03, min_samples=50)
"""The int8 rollout of the issue: a 3 point limit, feedback from about 50 answers per arm."""


def arm(requests=200, errors=0, run_ms=2.0, correct=0, judged=0) -> Arm:
    """An arm whose every run took about run_ms (one histogram bucket around it)."""
    bound = run_ms / 1000
    buckets = {bound * 0.5: 0.0, bound: requests - errors, float("inf"): requests - errors}
    return Arm(requests, errors, buckets, correct, judged)


def outcomes(window: StepWindow, percent: float = 20) -> dict[str, str]:
    """Each gate's outcome at a step's deadline, its only look (cli.looks): at 2.5 % a side."""
    return {r.gate: r.outcome for r in evaluate(window, GATES, percent, final=True)}


def window(a: Arm, b: Arm, agree=200, compared=200) -> StepWindow:
    return StepWindow({"A": a, "B": b}, agree, compared)


def test_wilson_interval_matches_the_textbook_value():
    low, high = wilson(8, 10)  # Wilson 95 % for 8/10: [0.490, 0.943]
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 0) is None


def test_a_healthy_b_passes_every_gate():
    good = window(
        arm(requests=2000, correct=1800, judged=2000), arm(requests=2000, correct=1820, judged=2000)
    )
    assert set(outcomes(good).values()) == {PASS}


def test_b_erroring_above_the_limit_fails():
    assert (
        outcomes(window(arm(), arm(errors=6)))["error rate"] == FAIL
    )  # P(X >= 6 | 200, 1 %) = 1.6 %


def test_b_slower_by_ratio_and_margin_fails_but_by_ratio_alone_passes():
    assert outcomes(window(arm(run_ms=2), arm(run_ms=20)))["p95 inference"] == FAIL
    assert outcomes(window(arm(run_ms=0.5), arm(run_ms=2)))["p95 inference"] == PASS


def test_a_p95_above_the_limit_by_a_few_runs_is_inconclusive_not_failed():
    a = Arm(200, 0, {0.008: 0, 0.01: 200, float("inf"): 200})  # p95 9.9 ms: limit 14.9 ms
    # 14 of 200 runs (7 %) past the limit put B's p95 at 17.1 ms; 5 % would give 10 by chance
    # 13 % of the time, so 14 does not show B's p95 is past the limit
    b = Arm(200, 0, {0.008: 0, 0.01: 186, 0.016: 186, 0.02: 200, float("inf"): 200})
    assert b.p95 > 0.0149, b.p95
    assert outcomes(window(a, b))["p95 inference"] == INCONCLUSIVE


def test_low_agreement_fails():
    assert outcomes(window(arm(), arm(), agree=100, compared=200))["shadow agreement"] == FAIL


def test_no_errors_in_too_few_requests_to_show_the_limit_is_inconclusive():
    # 0 errors in 200: B's error rate may still be up to 1.9 %, above the 1 % limit
    few = {r.gate: r for r in evaluate(window(arm(), arm(requests=200)), GATES, 20, final=True)}
    assert few["error rate"].outcome == INCONCLUSIVE, few
    assert few["error rate"].limit == "<= 1.0% (in [0.0%, 1.9%])", few
    assert outcomes(window(arm(), arm(requests=400)))["error rate"] == PASS


def test_agreement_whose_interval_holds_the_limit_is_inconclusive():
    near = {
        r.gate: r
        for r in evaluate(window(arm(), arm(), agree=182, compared=200), GATES, 20, final=True)
    }
    assert near["shadow agreement"].outcome == INCONCLUSIVE, near
    assert near["shadow agreement"].limit == ">= 90.0% (in [86.2%, 94.2%])", near


def test_worse_accuracy_beyond_the_delta_fails():
    worse = window(arm(correct=190, judged=200), arm(correct=170, judged=200))
    assert outcomes(worse)["accuracy (feedback)"] == FAIL


def test_the_operators_overlapping_intervals_are_inconclusive_not_a_fail():
    # B 88.0 % of 66 against A 94.1 % of 51, limit -3 points: the gap may be inside it.
    operator = window(arm(correct=48, judged=51), arm(correct=58, judged=66))
    result = {r.gate: r for r in evaluate(operator, OPERATOR, 20, final=True)}[
        "accuracy (feedback)"
    ]
    assert result.outcome == INCONCLUSIVE, result
    assert "B - A in [-17.0%, +5.4%]" in result.limit, result


def test_equal_accuracy_with_enough_feedback_passes():
    equal = window(arm(correct=1800, judged=2000), arm(correct=1800, judged=2000))
    assert outcomes(equal)["accuracy (feedback)"] == PASS


def test_inconclusive_outranks_pass_and_yields_to_waiting():
    operator = window(arm(correct=48, judged=51), arm(correct=58, judged=66))
    assert overall(evaluate(operator, OPERATOR, 20, final=True)) == INCONCLUSIVE
    operator.compared = 10  # the agreement gate still lacks samples
    assert overall(evaluate(operator, OPERATOR, 20, final=True)) == WAIT


def test_equal_accuracy_with_a_3_point_margin_fails_in_at_most_5_percent_of_runs():
    rng = np.random.default_rng(22)
    fails = 0
    for _ in range(1000):
        a, b = (Arm(correct=int(rng.binomial(200, 0.9)), judged=200) for _ in range(2))
        fails += accuracy_verdict(b, a, -0.03, ONE_SIDED_ALPHA) == FAIL
    assert fails <= 50, fails


def test_too_few_samples_waits_instead_of_judging():
    few = window(arm(requests=50), arm(requests=50, errors=10), compared=10)
    assert outcomes(few)["error rate"] == WAIT
    assert overall(evaluate(few, GATES, 20)) == WAIT


def test_without_feedback_the_accuracy_gate_does_not_apply():
    assert outcomes(window(arm(), arm()))["accuracy (feedback)"] == SKIP


def test_at_100_percent_gates_that_need_a_do_not_apply():
    judged = outcomes(window(arm(requests=0), arm(requests=2000)), percent=100)
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


def test_a_bucket_edge_only_some_instances_export_is_left_out_of_the_step():
    def scrape(buckets: dict[float, float]) -> Scrape:
        return Scrape(at=0, run_buckets={"B": buckets})

    coarse = {0.025: 100.0, float("inf"): 100.0}  # an instance from before the finer buckets
    fine = {0.02: 50.0, 0.025: 100.0, float("inf"): 100.0}
    pairs = [(scrape({}), scrape(coarse)), (scrape({}), scrape(fine))]
    assert step_window(pairs).arms["B"].run_buckets == {0.025: 200, float("inf"): 200}


def test_a_step_counts_each_version_pairs_comparisons_from_where_that_pair_stood():
    # B changed in the step: the old pair's series left, the new one counted 30 and 10.
    before = Scrape(at=0.0, shadow={("a1", "b1", "agree"): 10.0})
    after = Scrape(at=1.0, shadow={("a1", "b2", "agree"): 30.0, ("a1", "b2", "disagree"): 10.0})
    step = step_window([(before, after)])
    assert (step.agree, step.compared) == (30, 40), step


def error_gate(b: Arm, looks: StepLooks, final: bool = False):
    (result,) = [
        r for r in evaluate(window(arm(), b), GATES, 20, looks, final) if r.gate == "error rate"
    ]
    return result


def test_a_gate_looks_again_only_once_its_samples_have_doubled():
    looks = StepLooks()
    assert error_gate(arm(requests=200), looks).looks == "look 1 of at most 5"
    # 15 errors in 300 would fail any look, but 300 samples are not yet twice 200
    between = error_gate(arm(requests=300, errors=15), looks)
    assert (between.outcome, between.looks) == (INCONCLUSIVE, "look 1 of at most 5"), between
    doubled = error_gate(arm(requests=400, errors=20), looks)
    assert (doubled.outcome, doubled.looks) == (FAIL, "look 2 of at most 5"), doubled


def test_the_deadline_looks_whatever_the_samples_grew():
    looks = StepLooks()
    error_gate(arm(requests=200), looks)
    last = error_gate(arm(requests=300, errors=15), looks, final=True)
    assert (last.outcome, last.looks) == (FAIL, "look 2 of at most 5"), last


def test_a_failed_gates_reason_says_which_look_failed_it():
    results = evaluate(window(arm(), arm(errors=50)), GATES, 20)
    assert "(look 1 of at most 5)" in failure_reason(results, 20)


def test_in_a_five_step_rollout_a_step_fails_b_only_at_its_fifth_of_the_level():
    # P(at least 9 errors in 400 | 1 %) = 2.1 %: beyond one step's 2.5 % at the deadline, not
    # beyond a fifth of it; 11 (0.27 %) is beyond both
    one_step, five_steps = StepLooks(steps=1), StepLooks(steps=5)
    assert error_gate(arm(requests=400, errors=9), one_step, final=True).outcome == FAIL
    assert error_gate(arm(requests=400, errors=9), five_steps, final=True).outcome == INCONCLUSIVE
    assert error_gate(arm(requests=400, errors=11), StepLooks(steps=5), final=True).outcome == FAIL


def run_times(rng: np.random.Generator, runs: int, median_ms: float) -> np.ndarray:
    """Each histogram bucket's runs, for heavy-tailed log-normal run times (sigma 0.8)."""
    times = rng.lognormal(np.log(median_ms / 1000), 0.8, runs)
    return np.bincount(np.searchsorted(RUN_BUCKETS, times), minlength=len(RUN_BUCKETS) + 1)


def latency_outcomes(rng: np.random.Generator, b_median_ms: float) -> list[str]:
    """The latency gate's outcome at each of a step's 60 polls, 10 new runs per arm each,
    judged as a step of a 5-step rollout with --min-samples 20."""
    gates = replace(GATES, min_agreement=None, min_accuracy_delta=None, min_samples=20)
    looks, seen = StepLooks(steps=5), {"A": 0, "B": 0}
    judged = []
    for poll in range(1, 61):
        seen = {
            "A": seen["A"] + run_times(rng, 10, 10.0),
            "B": seen["B"] + run_times(rng, 10, b_median_ms),
        }
        arms = {v: Arm(10.0 * poll, 0, run_buckets(seen[v])) for v in ("A", "B")}
        results = evaluate(StepWindow(arms), gates, 20, looks, final=poll == 60)
        judged += [r.outcome for r in results if r.gate == "p95 inference"]
    return judged


def test_a_b_as_fast_as_a_is_not_failed_over_many_polls_and_a_3x_slower_one_is():
    rng = np.random.default_rng(22)
    same = [FAIL in latency_outcomes(rng, 10.0) for _ in range(20)]
    slower = [FAIL in latency_outcomes(rng, 30.0) for _ in range(20)]
    assert (sum(same), sum(slower)) == (0, 20), (same, slower)
