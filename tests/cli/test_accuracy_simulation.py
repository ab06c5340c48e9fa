"""A seeded Monte Carlo run of the accuracy gate (the full run: `make simulate`)."""

from __future__ import annotations

import pytest

from edgeserve.cli.accuracy_simulation import (
    EQUAL,
    UNPAIRED_CASES,
    WORSE,
    paired_outcomes,
    unpaired_outcomes,
)

RUNS = 1000


@pytest.mark.parametrize("case", EQUAL, ids=lambda case: f"{case.pairs} pairs")
def test_equal_accuracy_with_a_3_point_margin_fails_in_at_most_5_percent_of_runs(case):
    assert paired_outcomes(case, RUNS, seed=22)["fail"] <= 0.05 * RUNS


def test_a_true_5_point_drop_fails_in_at_least_80_percent_of_runs_at_2000_pairs():
    (case,) = [case for case in WORSE if case.pairs == 2000]
    assert paired_outcomes(case, RUNS, seed=22)["fail"] >= 0.8 * RUNS


def test_the_operators_case_is_mostly_inconclusive_and_rarely_a_fail():
    # A 94 % on 51 answers, B 92.3 % on 66 (the true gap, -1.7 points, is inside the limit);
    # the very counts the operator saw are judged in test_rollout_analysis.py
    (case,) = [case for case in UNPAIRED_CASES if case.a_samples == 51]
    outcomes = unpaired_outcomes(case, RUNS, seed=22)
    assert outcomes["fail"] <= 0.05 * RUNS and outcomes["inconclusive"] >= 0.8 * RUNS, outcomes
