"""The guard's statistics and thresholds, exactly: each boundary and each verdict's wording."""

from __future__ import annotations

from dataclasses import replace

from edgeserve.traffic.canary import (
    MAX_SIZES,
    CanaryGuard,
    GuardLimits,
    Outcome,
    SizeWindow,
    latency_verdict,
)
from edgeserve.traffic.sequential import SequentialTest
from tests.support.guard import LIMITS

FAST, SLOW = [0.25] * 20, [1.0] * 20  # seconds: B 4x and +750 ms, no overlap at all


def crossed() -> SequentialTest:
    """The paired sign test of run times, already convinced that B is slower."""
    slower = SequentialTest(0.5, 0.01)
    for _ in range(20):
        slower.add(True)
    return slower


def test_latency_verdict_needs_min_samples_in_each_arm_and_no_more():
    assert latency_verdict(0, FAST, SLOW, crossed(), LIMITS) is not None
    assert latency_verdict(0, FAST[1:], SLOW * 2, crossed(), LIMITS) is None
    assert latency_verdict(0, FAST * 2, SLOW[1:], crossed(), LIMITS) is None


def test_latency_verdict_needs_the_sequential_test_to_have_crossed():
    assert latency_verdict(0, FAST, SLOW, SequentialTest(0.5, 0.01), LIMITS) is None


def test_latency_exactly_at_the_ratio_is_tolerated():
    assert latency_verdict(0, FAST, [0.5] * 20, crossed(), LIMITS) is None  # exactly 2x, +250 ms


def test_latency_exactly_at_the_margin_is_tolerated():
    at_margin = replace(LIMITS, min_latency_delta_ms=750.0)
    assert latency_verdict(0, FAST, SLOW, crossed(), at_margin) is None  # 4x, exactly +750 ms


def test_latency_verdict_names_the_figures_and_the_size():
    assert latency_verdict(512, FAST, SLOW, crossed(), LIMITS) == (
        "B p95 inference time 1000.0 ms is 4.0x A's 250.0 ms (+750.0 ms) at img_size 512, "
        "above 2x and +5 ms (20 vs 20 requests; B slower in 20 of 20 time-matched pairs, "
        "e-value 8.24e+04)"
    )
    assert "at the default img_size, above" in latency_verdict(0, FAST, SLOW, crossed(), LIMITS)


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
    assert [len(arm) for arm in guard.sizes[0].window.arms.values()] == [3, 3]


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
    twelve = [True] * 11 + [False]
    interleave(guard, 0, twelve, [False] * 6 + [True] * 6, 0.0)
    interleave(guard, 512, twelve, [False] * 6 + [True] * 6, 100.0)
    # 12 per arm and size: below min_samples alone, 24 together.
    assert guard.verdict() == (
        "B error rate 50.0% (12 model failures in 24 requests) is significantly above 5.0% "
        "(e-value 8.45e+07)"
    )


def test_a_size_only_a_served_does_not_count_in_the_error_rate():
    guard = CanaryGuard(LIMITS)
    for at in range(20):  # A alone, failing, at a size B never served
        guard.record("A", 512, False, 0.0, at)
    interleave(guard, 0, [True] * 20, [True] * 11 + [False] * 9, 100.0)
    assert guard.errors.total["A"] == 20, guard.errors.total
    assert guard.verdict().startswith("B error rate 45.0% (9 model failures in 20 requests)")


def test_b_failures_at_a_size_a_has_not_answered_count_once_a_answered_anything():
    guard = CanaryGuard(LIMITS)
    interleave(guard, 0, [True] * 20, [True] * 20, 0.0)
    for at in range(60):  # B alone at 512 (forced there), failing often, never 5 in a row
        guard.record("B", 512, at % 3 != 2, 0.001, 100.0 + at)
    assert guard.verdict().startswith("B error rate 25.0% (20 model failures in 80 requests)")


def test_b_failures_at_a_size_a_has_not_answered_count_against_a_at_its_own_sizes():
    guard = CanaryGuard(LIMITS)
    for at in range(30):  # no size in common: A at its default size, B forced to 512
        guard.record("A", 0, True, 0.001, at)
        guard.record("B", 512, at % 3 != 2, 0.001, at)
    assert guard.verdict().startswith("B error rate 33.3% (10 model failures in 30 requests)")


def test_b_failures_alone_count_only_once_a_has_answered_anything():
    guard = CanaryGuard(LIMITS)
    for at in range(30):  # A has only failed: maybe nothing can serve these inputs yet
        guard.record("A", 0, False, 0.0, at)
        guard.record("B", 512, at % 3 != 2, 0.001, at)
    assert guard.verdict() is None


def test_the_latency_verdict_of_a_guard_names_the_size():
    guard = CanaryGuard(LIMITS)
    for at in range(20):
        guard.record("A", 512, True, 0.25, at)
        guard.record("B", 512, True, 1.0, at)
    assert "at img_size 512, above" in guard.verdict()
