"""The canary guard judges B against A only with enough samples."""

from __future__ import annotations

from edgeserve.traffic.canary import CanaryGuard, GuardLimits, p95

LIMITS = GuardLimits(window=50, min_samples=10, max_error_rate=0.1, max_latency_ratio=2.0)


def fed(a: list[tuple[bool, float]], b: list[tuple[bool, float]]) -> CanaryGuard:
    guard = CanaryGuard(LIMITS)
    for ok, seconds in a:
        guard.record("A", ok, seconds)
    for ok, seconds in b:
        guard.record("B", ok, seconds)
    return guard


def test_no_verdict_before_min_samples():
    assert fed([], [(False, 0.01)] * 9).verdict() is None


def test_error_rate_above_the_limit_rolls_back():
    verdict = fed([(True, 0.01)] * 20, [(True, 0.01)] * 8 + [(False, 0.01)] * 2).verdict()
    assert verdict is not None and "error rate" in verdict


def test_error_rate_at_the_limit_is_tolerated():
    assert fed([(True, 0.01)] * 20, [(True, 0.01)] * 9 + [(False, 0.01)]).verdict() is None


def test_slow_b_against_a_rolls_back():
    verdict = fed([(True, 0.010)] * 20, [(True, 0.030)] * 20).verdict()
    assert verdict is not None and "p95 latency" in verdict


def test_latency_needs_enough_a_samples_too():
    assert fed([(True, 0.010)] * 5, [(True, 0.030)] * 20).verdict() is None


def test_window_forgets_old_errors():
    guard = fed([(True, 0.01)] * 20, [(False, 0.01)] * 10)
    for _ in range(50):
        guard.record("B", True, 0.01)
    assert guard.verdict() is None


def test_p95_is_the_value_below_which_95_percent_fall():
    assert p95([float(n) for n in range(1, 101)]) == 96.0
    assert p95([float(n) for n in range(1, 21)]) == 20.0
    assert p95([5.0]) == 5.0


def test_the_latency_verdict_names_both_p95s_and_the_ratio():
    verdict = fed([(True, 0.200)] * 20, [(True, 0.500)] * 20).verdict()
    assert verdict == "B p95 latency 500.0 ms is 2.5x A's 200.0 ms, above 2x"


def test_latency_at_exactly_the_ratio_is_tolerated():
    assert fed([(True, 0.010)] * 20, [(True, 0.020)] * 20).verdict() is None


def test_exactly_min_samples_of_a_are_enough_to_judge_latency():
    assert fed([(True, 0.010)] * 10, [(True, 0.030)] * 20).verdict() is not None


def test_a_latencies_of_zero_give_no_verdict_rather_than_a_division_by_zero():
    assert fed([(True, 0.0)] * 20, [(True, 0.030)] * 20).verdict() is None


def test_window_forgets_old_a_latencies_too():
    guard = fed([(True, 0.100)] * 50 + [(True, 0.010)] * 50, [(True, 0.030)] * 20)
    assert guard.verdict() is not None, "A's slow past must not hide a slow B"
