"""A seeded Monte Carlo run of one rollout step judged every second (the full run: `make
simulate`)."""

from __future__ import annotations

from collections import Counter

import pytest

from edgeserve.cli.rollout_simulation import (
    AGREEMENT,
    ERROR,
    FLIPS,
    LATENCY,
    LONG_WAIT,
    PAIRED,
    UNPAIRED,
    cases,
    outcomes,
    rollout_verdicts,
)

RUNS = 200
AT_THE_LIMIT = [case for case in cases(20) if case.truth.startswith("at the limit")]
WORSE = [
    case
    for per_second, gates in ((20, (ERROR, AGREEMENT, FLIPS)), (200, (PAIRED, UNPAIRED)))
    for case in cases(per_second)
    if case.truth.startswith("worse") and case.gate in gates
]
"""Requests at 20 per second; feedback (paired or not) at 50 per second, about 3,500 answers by
the deadline: 5 per second (350) cannot tell a 5-point drop from a 3-point limit."""


def name(case) -> str:
    return f"{case.gate.name}, {case.per_second:g} per s"


@pytest.mark.parametrize("case", AT_THE_LIMIT, ids=name)
def test_a_b_at_its_limit_fails_a_step_in_at_most_5_percent_of_runs(case):
    assert outcomes(case, RUNS, seed=22, bounded=True)["fail"] <= 0.05 * RUNS


def test_ten_times_the_wait_still_fails_a_b_at_its_limit_in_at_most_5_percent_of_runs():
    (case,) = [case for case in AT_THE_LIMIT if case.gate is ERROR]
    assert outcomes(case, RUNS, seed=22, bounded=True, max_wait=LONG_WAIT)["fail"] <= 0.05 * RUNS


def test_judging_every_second_at_the_one_look_level_failed_such_a_b_far_more_often():
    (case,) = [case for case in AT_THE_LIMIT if case.gate.name.startswith("agreement")]
    assert outcomes(case, RUNS, seed=22, bounded=False)["fail"] >= 0.15 * RUNS


@pytest.mark.parametrize("case", WORSE, ids=name)
def test_a_clearly_worse_b_still_fails_in_at_least_95_percent_of_runs(case):
    assert outcomes(case, RUNS, seed=22, bounded=True)["fail"] >= 0.95 * RUNS


@pytest.mark.parametrize("gate", [ERROR, AGREEMENT], ids=lambda gate: gate.name)
def test_a_whole_rollout_fails_a_b_at_its_limit_in_at_most_5_percent_of_runs(gate):
    (case,) = [case for case in AT_THE_LIMIT if case.gate is gate]
    failed = rollout_verdicts(case, RUNS, seed=22, split=True) == "fail"
    assert failed.any(axis=1).mean() <= 0.05, failed.sum(axis=0)


@pytest.mark.parametrize("gate", [ERROR, AGREEMENT], ids=lambda gate: gate.name)
def test_a_clearly_worse_b_still_fails_the_first_step_of_a_rollout_in_95_percent_of_runs(gate):
    (case,) = [case for case in WORSE if case.gate is gate]
    first_step = rollout_verdicts(case, RUNS, seed=22, split=True)[:, 0]
    assert (first_step == "fail").mean() >= 0.95, Counter(first_step)


def latency_case(truth: str):
    (case,) = [case for case in cases(20) if case.gate is LATENCY and case.truth.startswith(truth)]
    return case


def test_a_b_as_fast_as_a_passes_the_latency_gate_and_is_not_failed():
    judged = outcomes(latency_case("as fast as A"), RUNS, seed=22, bounded=True)
    assert judged["fail"] <= 0.05 * RUNS and judged["pass"] >= 0.95 * RUNS, judged


def test_a_2x_slower_b_fails_the_latency_gate_in_at_least_85_percent_of_steps():
    judged = outcomes(latency_case("worse: 2x slower"), RUNS, seed=22, bounded=True)
    assert judged["fail"] >= 0.85 * RUNS, judged


def test_comparing_p95s_failed_a_b_at_its_latency_limit_in_about_half_the_steps():
    judged = outcomes(latency_case("at the limit"), RUNS, seed=22, bounded=False)
    assert judged["fail"] >= 0.3 * RUNS, judged
