"""The canary guard judges B against A only with enough samples."""

from __future__ import annotations

from edgeserve.traffic.canary import CanaryGuard, GuardLimits

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
