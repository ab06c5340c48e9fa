"""The canary guard judges only what the model controls, with enough samples and significance."""

from __future__ import annotations

import random

import pytest

from edgeserve.traffic.canary import CanaryGuard, p95
from tests.support.guard import LIMITS


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def tick(self) -> float:
        self.now += 0.01
        return self.now


def alternate(guard: CanaryGuard, a, b, size: int = 0, clock: Clock | None = None) -> None:
    """Feed (ok, seconds) pairs to both arms in turn, as interleaved traffic would."""
    clock = clock or Clock()
    for index in range(max(len(a), len(b))):
        if index < len(a):
            guard.record("A", size, a[index][0], a[index][1], clock.tick())
        if index < len(b):
            guard.record("B", size, b[index][0], b[index][1], clock.tick())


def noisy(ms: float, n: int, seed: int, spread: float = 0.2) -> list[tuple[bool, float]]:
    rng = random.Random(seed)
    return [(True, ms / 1000 * rng.uniform(1 - spread, 1 + spread)) for _ in range(n)]


def test_p95_is_the_nearest_rank():
    assert p95([float(i) for i in range(1, 101)]) == 95.0
    assert p95([3.0]) == 3.0


def test_no_verdict_before_min_samples():
    guard = CanaryGuard(LIMITS)
    alternate(guard, noisy(1, 19, 1), noisy(50, 19, 2))
    assert guard.verdict() is None


def test_b_slower_by_ratio_and_margin_rolls_back_and_names_latency():
    guard = CanaryGuard(LIMITS)
    alternate(guard, noisy(4, 40, 1), noisy(20, 40, 2))
    verdict = guard.verdict()
    assert verdict is not None and "inference time" in verdict, verdict


@pytest.mark.parametrize(
    "a_ms, b_ms",
    [(0.5, 4), (40, 60)],
    ids=["8x slower but within the margin (+3.5 ms)", "past the margin (+20 ms) but within 2x"],
)
def test_b_slower_by_only_one_of_ratio_and_margin_is_tolerated(a_ms, b_ms):
    guard = CanaryGuard(LIMITS)
    alternate(guard, noisy(a_ms, 60, 1), noisy(b_ms, 60, 2))
    assert guard.verdict() is None


def test_identical_noisy_arms_never_roll_back():
    for seed in range(50):
        guard = CanaryGuard(LIMITS)
        alternate(guard, noisy(3, 200, seed, spread=0.9), noisy(3, 200, seed + 1000, spread=0.9))
        assert guard.verdict() is None, seed


def test_a_few_slow_outliers_without_a_shift_are_not_significant():
    guard = CanaryGuard(LIMITS)
    b = noisy(2, 40, 2)
    b[::10] = [(True, 0.050)] * 4  # 10 % of B slow: p95 moves, the distribution does not
    alternate(guard, noisy(2, 40, 1), b)
    assert guard.verdict() is None


def test_latency_is_compared_only_within_the_same_input_size():
    guard = CanaryGuard(LIMITS)
    clock = Clock()
    alternate(guard, noisy(2, 40, 1), [], size=0, clock=clock)
    alternate(guard, [], noisy(40, 40, 2), size=512, clock=clock)  # big inputs sent only to B
    assert guard.verdict() is None


def test_consecutive_b_failures_while_a_is_clean_roll_back_at_once():
    guard = CanaryGuard(LIMITS)
    alternate(guard, noisy(1, 3, 1), [])
    for count in range(1, 6):
        guard.record("B", 0, False, 0.0, 100.0 + count)
        assert (guard.verdict() is None) == (count < 5), count
    assert "5 requests in a row" in guard.verdict()


def test_failure_run_is_not_the_fast_path_when_a_fails_too():
    guard = CanaryGuard(LIMITS)
    alternate(guard, [(True, 0.001), (False, 0.0), (True, 0.001)], [])
    for count in range(5):
        guard.record("B", 0, False, 0.0, 100.0 + count)
    assert guard.verdict() is None


def test_failures_at_a_size_a_never_answered_start_the_fast_path():
    guard = CanaryGuard(LIMITS)
    alternate(guard, noisy(1, 3, 1), [], size=0)
    for count in range(1, 6):
        guard.record("B", 4096, False, 0.0, 100.0 + count)
        assert (guard.verdict() is None) == (count < 5), count
    assert "5 requests in a row" in guard.verdict()


def test_b_failures_right_after_a_restart_roll_back_before_a_answers_anything():
    guard = CanaryGuard(LIMITS)  # a fresh guard: nothing from A yet, B forced by X-Canary
    for count in range(1, 6):
        guard.record("B", 0, False, 0.0, 1.0 + count)
        assert (guard.verdict() is None) == (count < 5), count
    assert guard.verdict() == "B failed 5 requests in a row while A failed none"


def test_a_success_breaks_the_failure_run():
    guard = CanaryGuard(LIMITS)
    alternate(guard, noisy(1, 3, 1), [])
    for count in range(8):
        guard.record("B", 0, count % 4 == 3, 0.001, 100.0 + count)
    assert guard.verdict() is None


def test_error_rate_significantly_above_a_rolls_back():
    guard = CanaryGuard(LIMITS)
    b = [(True, 0.001)] * 48 + [(False, 0.0)] * 12
    random.Random(3).shuffle(b)
    alternate(guard, noisy(1, 60, 1), b)
    verdict = guard.verdict()
    assert verdict is not None and "significantly above A's 0.0%" in verdict, verdict


def test_error_rate_like_a_is_tolerated():
    guard = CanaryGuard(LIMITS)
    pattern = ([(True, 0.001)] * 9 + [(False, 0.0)]) * 4
    alternate(guard, pattern, pattern[5:] + pattern[:5])
    assert guard.verdict() is None


def test_error_rate_significantly_above_the_limit_rolls_back_before_the_pairs_show_it():
    guard = CanaryGuard(LIMITS)
    a = ([(True, 0.001)] * 4 + [(False, 0.0)]) * 8  # A fails 20 %
    b = ([(True, 0.001)] * 3 + [(False, 0.0)] * 2) * 8  # B 40 %, mostly beside A's failures
    alternate(guard, a, b)
    verdict = guard.verdict()
    assert verdict is not None and "significantly above 5.0%" in verdict, verdict


def test_error_counts_are_not_forgotten_while_b_serves():
    guard = CanaryGuard(LIMITS)
    alternate(guard, noisy(1, 60, 1), [(False, 0.0), (True, 0.001)] * 8)  # 8 B failures
    alternate(guard, noisy(1, 2000, 2), noisy(1, 2000, 3))
    assert guard.errors.failed == {"A": 0, "B": 8}, guard.errors.failed
    assert guard.errors.total == {"A": 2060, "B": 2016}, guard.errors.total


def test_the_busier_arm_is_sampled_from_the_same_time_as_the_other():
    guard = CanaryGuard(LIMITS)
    clock = Clock()
    # Early on both arms are slow (load); later A alone serves a long calm stretch.
    alternate(guard, noisy(20, 30, 1), noisy(20, 30, 2), clock=clock)
    for seconds in noisy(2, 500, 3):
        guard.record("A", 0, *seconds, clock.tick())
    assert guard.verdict() is None


def test_reset_forgets_everything():
    guard = CanaryGuard(LIMITS)
    alternate(guard, noisy(1, 3, 1), [(False, 0.0)] * 5)
    guard.reset()
    assert guard.verdict() is None and guard.b_failure_run == 0
