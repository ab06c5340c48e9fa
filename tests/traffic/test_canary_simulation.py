"""A seeded Monte Carlo run of the guard's own code (the full run: `make simulate`)."""

from __future__ import annotations

import pytest

from edgeserve.traffic.simulation import CASES_SLOWER, CASES_WORSE, identical, simulate


@pytest.mark.parametrize("share_b", [0.5, 0.1], ids=["50/50", "90/10"])
def test_identical_flaky_a_and_b_are_not_rolled_back(share_b):
    result = simulate(identical(0.03, share_b), runs=10, requests=20_000, seed=22)
    assert result.rollbacks == 0, result


@pytest.mark.parametrize("case", CASES_WORSE, ids=lambda case: case.name)
def test_b_failing_four_times_as_often_is_rolled_back_within_10000_b_requests(case):
    result = simulate(case, runs=10, requests=100_000, seed=22)
    assert result.rollbacks == 10, result
    assert max(result.b_requests_to_rollback) <= 10_000, result


@pytest.mark.parametrize("case", CASES_SLOWER, ids=lambda case: case.name)
def test_b_three_times_slower_is_rolled_back_within_500_b_requests(case):
    result = simulate(case, runs=10, requests=5_000, seed=22)
    assert result.rollbacks == 10, result
    assert max(result.b_requests_to_rollback) <= 500, result
