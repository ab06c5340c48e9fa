"""The guard's statistics and thresholds, exactly: each boundary and each verdict's wording."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edgeserve.traffic.canary import (
    MAX_SIZES,
    CanaryGuard,
    GuardLimits,
    Outcome,
    SizeWindow,
    error_verdict,
    fisher_greater,
    latency_verdict,
    mann_whitney_greater,
)
from tests.support.guard import LIMITS

FAST, SLOW = [0.25] * 20, [1.0] * 20  # seconds: B 4x and +750 ms, no overlap at all


def test_mann_whitney_with_ties_matches_the_formula_to_the_last_digit():
    # 5, 6 and 7 appear in both arms: U_B = 51.5, variance 64/12 * (17 - 18/240) = 90.2667.
    b, a = [5, 6, 7, 8, 9, 10, 11, 12], [1, 2, 3, 4, 5, 6, 7, 13]
    assert mann_whitney_greater(b, a) == pytest.approx(0.0227601030, rel=1e-8)


def test_mann_whitney_when_b_holds_the_smallest_value():
    # The same samples the other way round: U_B = 12.5, z = -2.105.
    b, a = [1, 2, 3, 4, 5, 6, 7, 13], [5, 6, 7, 8, 9, 10, 11, 12]
    assert mann_whitney_greater(b, a) == pytest.approx(0.9823573399, rel=1e-8)


def test_mann_whitney_with_a_small_variance_still_gives_its_p_value():
    # U_B = 2, mean 1, variance 2/12 * 4 = 0.667 (below 1, still a real test).
    assert mann_whitney_greater([5.0, 6.0], [1.0]) == pytest.approx(0.2701456873, rel=1e-8)


@pytest.mark.parametrize(
    ("b", "a"), [([], [1.0]), ([1.0], []), ([], []), ([2.0] * 5, [2.0] * 5)], ids=str
)
def test_mann_whitney_without_two_arms_or_any_spread_says_nothing(b, a):
    assert mann_whitney_greater(b, a) == 1.0


def test_fisher_when_b_could_not_hold_every_failure():
    # 8 failures in 13 requests, B drew 3 and all 3 failed: C(8,3) / C(13,3) = 56 / 286.
    assert fisher_greater(3, 3, 5, 10) == pytest.approx(56 / 286, rel=1e-12)


def test_latency_verdict_needs_min_samples_in_each_arm_and_no_more():
    assert latency_verdict(0, FAST, SLOW, LIMITS) is not None
    assert latency_verdict(0, FAST[1:], SLOW * 2, LIMITS) is None
    assert latency_verdict(0, FAST * 2, SLOW[1:], LIMITS) is None


def test_latency_exactly_at_the_ratio_is_tolerated():
    assert latency_verdict(0, FAST, [0.5] * 20, LIMITS) is None  # exactly 2x, +250 ms


def test_latency_exactly_at_the_margin_is_tolerated():
    at_margin = replace(LIMITS, min_latency_delta_ms=750.0)
    assert latency_verdict(0, FAST, SLOW, at_margin) is None  # 4x, exactly +750 ms


def test_latency_verdict_names_the_figures_and_the_size():
    assert latency_verdict(512, FAST, SLOW, LIMITS) == (
        "B p95 inference time 1000.0 ms is 4.0x A's 250.0 ms (+750.0 ms) at img_size 512, "
        "above 2x and +5 ms (20 vs 20 requests, Mann-Whitney p=2.3e-10)"
    )
    assert "at the default img_size, above" in latency_verdict(0, FAST, SLOW, LIMITS)


def test_error_verdict_needs_min_samples_in_each_arm_and_no_more():
    assert error_verdict(0, 20, 8, 20, LIMITS) is not None
    assert error_verdict(0, 19, 8, 40, LIMITS) is None
    assert error_verdict(0, 40, 8, 19, LIMITS) is None


def test_an_error_rate_equal_to_a_is_tolerated_even_above_the_limit():
    assert error_verdict(10, 20, 10, 20, LIMITS) is None


def test_an_error_rate_above_a_but_not_significant_and_at_the_limit_is_tolerated():
    assert error_verdict(0, 20, 1, 20, LIMITS) is None  # 5.0 % is not above 5.0 %, p = 0.5


def test_a_significant_error_rate_is_named_with_both_rates_and_the_p_value():
    assert error_verdict(1, 20, 9, 20, LIMITS) == (
        "B error rate 45.0% (9 model failures in 20 requests) is significantly above A's 5.0% "
        "(Fisher p=0.0042)"
    )


def test_an_error_rate_over_the_limit_but_not_significant_is_named_by_the_limit():
    assert error_verdict(2, 20, 9, 20, LIMITS) == (
        "B error rate 45.0% (9 model failures in 20 requests) is above 5.0%"
    )


def add_all(window: SizeWindow, variants: str) -> None:
    for at, variant in enumerate(variants):
        window.add(variant, Outcome(float(at), True, 0.001))


def test_each_arm_keeps_only_its_last_window_outcomes():
    window = SizeWindow(3)
    add_all(window, "AB" * 10)
    assert (len(window.arms["A"]), len(window.arms["B"])) == (3, 3)


def test_the_busier_arm_keeps_two_outcomes_per_outcome_of_the_other():
    window = SizeWindow(100)
    add_all(window, "AAAAA")  # B has nothing yet: A keeps everything
    assert len(window.arms["A"]) == 5
    add_all(window, "B" + "A" * 10 + "B" + "A" * 10)
    assert len(window.arms["A"]) == 5 + 2 + 2
    assert len(window.arms["B"]) == 2


def test_aligned_starts_at_the_later_first_outcome_of_the_two_arms():
    window = SizeWindow(100)
    window.add("B", Outcome(0.0, True, 0.001))
    window.add("A", Outcome(1.0, True, 0.001))
    window.add("A", Outcome(2.0, True, 0.001))
    a, b = window.aligned()
    assert ([o.at for o in a], b) == ([1.0, 2.0], [])


def test_aligned_keeps_outcomes_at_the_start_instant_in_both_arms():
    window = SizeWindow(100)
    window.add("A", Outcome(1.0, True, 0.001))
    window.add("B", Outcome(1.0, True, 0.001))
    assert tuple(map(len, window.aligned())) == (1, 1)


def test_the_guard_bounds_every_size_window():
    guard = CanaryGuard(
        GuardLimits(window=3, min_samples=2, max_error_rate=0.5, max_latency_ratio=2.0)
    )
    for at in range(10):
        guard.record("A", 0, True, 0.001, at)
        guard.record("B", 0, True, 0.001, at + 0.5)
    assert [len(arm) for arm in guard.sizes[0].arms.values()] == [3, 3]


def test_the_guard_tracks_max_sizes_and_forgets_the_least_recent():
    guard = CanaryGuard(LIMITS)
    for size in range(MAX_SIZES):
        guard.record("A", size, True, 0.001, 1.0)
    assert len(guard.sizes) == MAX_SIZES
    guard.record("A", 1000, True, 0.001, 2.0)
    assert len(guard.sizes) == MAX_SIZES and 0 not in guard.sizes and 1000 in guard.sizes


def test_an_answer_from_b_restarts_its_failure_count_at_zero():
    guard = CanaryGuard(LIMITS)
    guard.record("A", 0, True, 0.001, 0.0)
    guard.record("B", 0, True, 0.001, 1.0)
    for count in range(1, 6):
        guard.record("B", 0, False, 0.0, 1.0 + count)
        assert (guard.verdict() is None) == (count < 5), count


def test_after_reset_failures_start_a_new_run():
    guard = CanaryGuard(LIMITS)
    guard.record("B", 0, False, 0.0, 0.0)
    guard.reset()
    guard.record("A", 0, True, 0.001, 1.0)
    for at in range(5):
        guard.record("B", 0, False, 0.0, 2.0 + at)
    assert guard.verdict() == "B failed 5 requests in a row while A failed none"


def interleave(guard: CanaryGuard, size: int, a: list[bool], b: list[bool], start: float) -> None:
    for index, (a_ok, b_ok) in enumerate(zip(a, b, strict=True)):
        guard.record("A", size, a_ok, 0.001, start + index)
        guard.record("B", size, b_ok, 0.001, start + index)


def test_failures_add_up_over_every_size_both_arms_served():
    guard = CanaryGuard(LIMITS)
    twelve = [False] + [True] * 11
    interleave(guard, 0, twelve, [False] * 4 + [True] * 8, 0.0)
    interleave(guard, 512, twelve, [False] * 6 + [True] * 6, 100.0)
    # 12 per arm and size: below min_samples alone, 24 together (Fisher p = 0.0087 by hand).
    assert guard.verdict() == (
        "B error rate 41.7% (10 model failures in 24 requests) is significantly above A's 8.3% "
        "(Fisher p=0.0087)"
    )


def test_a_size_only_a_served_does_not_count_in_the_error_rate():
    guard = CanaryGuard(LIMITS)
    for at in range(20):  # A alone, failing, at a size B never served
        guard.record("A", 512, False, 0.0, at)
    interleave(guard, 0, [True] * 20, [True] * 17 + [False] * 3, 100.0)
    assert guard.verdict() == "B error rate 15.0% (3 model failures in 20 requests) is above 5.0%"


def test_b_failures_at_a_size_a_has_not_answered_count_once_a_answered_anything():
    guard = CanaryGuard(LIMITS)
    interleave(guard, 0, [True] * 20, [True] * 20, 0.0)
    for at in range(20):  # B alone at 512 (forced there), failing now and then, never in a row
        guard.record("B", 512, at % 6 != 5, 0.001, 100.0 + at)
    assert guard.verdict() == "B error rate 7.5% (3 model failures in 40 requests) is above 5.0%"


def test_b_failures_at_a_size_a_has_not_answered_count_against_a_at_its_own_sizes():
    guard = CanaryGuard(LIMITS)
    for at in range(20):  # no size in common: A at its default size, B forced to 512
        guard.record("A", 0, True, 0.001, at)
        guard.record("B", 512, at % 6 != 5, 0.001, at)
    assert guard.verdict() == "B error rate 15.0% (3 model failures in 20 requests) is above 5.0%"


def test_b_failures_alone_count_only_once_a_has_answered_anything():
    guard = CanaryGuard(LIMITS)
    for at in range(20):  # A has only failed: maybe nothing can serve these inputs yet
        guard.record("A", 0, False, 0.0, at)
        guard.record("B", 512, at % 6 != 5, 0.001, at)
    assert guard.verdict() is None


def test_the_latency_verdict_of_a_guard_names_the_size():
    guard = CanaryGuard(LIMITS)
    for at in range(20):
        guard.record("A", 512, True, 0.25, at)
        guard.record("B", 512, True, 1.0, at)
    assert "at img_size 512, above" in guard.verdict()
