"""The canary guard: judge B against A on what only the model controls.

What a client controls never moves the verdict. Only model failures count (the session run
failed), never bad input. Only the session run is timed, never decoding. Requests are compared
only with requests of the same input size (the `img_size` asked for, 0 for the model's
default), so big images or unusual sizes sent to B cannot make it look slow. Both arms are
sampled from the same stretch of time, so load that slows both cancels out.

Verdicts (any one rolls B back):
- latency: for some input size, B's p95 run time is above A's by both the ratio and the
  absolute margin, each arm has at least `min_samples` there, and a one-sided Mann-Whitney U
  test says B is slower at 99 % confidence;
- errors: B's failure rate is above A's, each arm has `min_samples`, and either a one-sided
  Fisher exact test says it is higher at 99 % confidence or it is above `max_error_rate`.
  At a size both arms served, both count (from the time both have samples). Once A has
  answered anything, B's outcomes at a size A has not served count too: a candidate on trial
  gets no benefit of the doubt. A's outcomes at a size B has not served count only where A has
  answered there: a size A only failed at says nothing about B;
- fast path: `max_consecutive_failures` B failures in a row while A has no failure in the
  window, even before A has answered anything (right after a restart, with canary-forced
  traffic), so a broken B costs at most that many requests.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from edgeserve.variants import CANDIDATE, CURRENT, VARIANTS, Variant, other

CONFIDENCE = 0.99
"""One-sided confidence both significance tests need before they count."""
MATCH_PER_OTHER = 2
"""An arm keeps at most this many outcomes per outcome of the other arm at the same size."""
MAX_SIZES = 16
"""Input sizes tracked at once; the least recently seen is forgotten beyond it."""


@dataclass(frozen=True)
class GuardLimits:
    window: int
    min_samples: int
    max_error_rate: float
    max_latency_ratio: float
    min_latency_delta_ms: float = 5.0
    max_consecutive_failures: int = 5


@dataclass(frozen=True)
class Outcome:
    """One request: when it finished, whether the model answered, and its run seconds."""

    at: float
    ok: bool
    seconds: float


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def mann_whitney_greater(b: list[float], a: list[float]) -> float:
    """One-sided p-value that B's values tend to be larger than A's.

    Normal approximation with tie and continuity corrections; sound for 8+ values per arm.
    """
    n_b, n_a = len(b), len(a)
    if not n_b or not n_a:
        return 1.0
    pooled = sorted([(value, 1) for value in b] + [(value, 0) for value in a])
    rank_sum_b, ties, i, n = 0.0, 0.0, 0, n_a + n_b
    while i < n:
        j = i
        while j < n and pooled[j][0] == pooled[i][0]:
            j += 1
        mid_rank = (i + 1 + j) / 2  # ranks i+1 .. j share their mean
        rank_sum_b += mid_rank * sum(1 for k in range(i, j) if pooled[k][1])
        tied = j - i
        ties += tied**3 - tied
        i = j
    u_b = rank_sum_b - n_b * (n_b + 1) / 2
    variance = n_a * n_b / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    z = (u_b - n_a * n_b / 2 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def fisher_greater(b_failed: int, b_total: int, a_failed: int, a_total: int) -> float:
    """One-sided Fisher exact p-value that B's failure rate is higher than A's.

    P(X >= b_failed) for X hypergeometric: b_total draws from a_total + b_total requests of
    which a_failed + b_failed failed. Exact at any sample size, integers only.
    """
    failed, total = a_failed + b_failed, a_total + b_total
    if not b_total or not failed:
        return 1.0
    denominator = math.comb(total, b_total)
    tail = sum(
        math.comb(failed, k) * math.comb(total - failed, b_total - k)
        for k in range(b_failed, min(failed, b_total) + 1)
    )
    return tail / denominator


def latency_verdict(size: int, a: list[float], b: list[float], limits: GuardLimits) -> str | None:
    """Why B is too slow at this input size, or None (run seconds of answered requests)."""
    if len(a) < limits.min_samples or len(b) < limits.min_samples:
        return None
    a_p95, b_p95 = p95(a), p95(b)
    delta_ms = (b_p95 - a_p95) * 1000
    if b_p95 <= a_p95 * limits.max_latency_ratio or delta_ms <= limits.min_latency_delta_ms:
        return None
    p_value = mann_whitney_greater(b, a)
    if p_value >= 1 - CONFIDENCE:
        return None
    shown = f"img_size {size}" if size else "the default img_size"
    return (
        f"B p95 inference time {b_p95 * 1000:.1f} ms is {b_p95 / max(a_p95, 1e-9):.1f}x "
        f"A's {a_p95 * 1000:.1f} ms (+{delta_ms:.1f} ms) at {shown}, above "
        f"{limits.max_latency_ratio:g}x and +{limits.min_latency_delta_ms:g} ms "
        f"({len(b)} vs {len(a)} requests, Mann-Whitney p={p_value:.2g})"
    )


def error_verdict(
    a_failed: int, a_total: int, b_failed: int, b_total: int, limits: GuardLimits
) -> str | None:
    """Why B fails too often against A, or None."""
    if a_total < limits.min_samples or b_total < limits.min_samples:
        return None
    a_rate, b_rate = a_failed / a_total, b_failed / b_total
    if b_rate <= a_rate:
        return None
    p_value = fisher_greater(b_failed, b_total, a_failed, a_total)
    if p_value >= 1 - CONFIDENCE and b_rate <= limits.max_error_rate:
        return None
    why = (
        f"significantly above A's {a_rate:.1%} (Fisher p={p_value:.2g})"
        if p_value < 1 - CONFIDENCE
        else f"above {limits.max_error_rate:.1%}"
    )
    return f"B error rate {b_rate:.1%} ({b_failed} model failures in {b_total} requests) is {why}"


@dataclass
class SizeWindow:
    """Both arms' recent outcomes at one input size, sampled from the same stretch of time."""

    window: int
    arms: dict[Variant, deque[Outcome]] = field(default_factory=dict)
    since_other: dict[Variant, int] = field(default_factory=lambda: dict.fromkeys(VARIANTS, 0))

    def __post_init__(self) -> None:
        self.arms = {variant: deque(maxlen=self.window) for variant in VARIANTS}

    def add(self, variant: Variant, outcome: Outcome) -> None:
        # The busier arm keeps only a few outcomes per outcome of the other, so at 95/5
        # traffic A's window spans the same minutes as B's instead of B's last few seconds.
        if self.arms[other(variant)] and self.since_other[variant] >= MATCH_PER_OTHER:
            return
        self.arms[variant].append(outcome)
        self.since_other[variant] += 1
        self.since_other[other(variant)] = 0

    def aligned(self) -> tuple[list[Outcome], list[Outcome]]:
        """(A, B) outcomes from the time both arms have samples for."""
        a, b = self.arms[CURRENT], self.arms[CANDIDATE]
        if not a or not b:
            return list(a), list(b)
        start = max(a[0].at, b[0].at)
        return [o for o in a if o.at >= start], [o for o in b if o.at >= start]


class CanaryGuard:
    """Records outcomes per variant and input size; `verdict` says why B must go, or None."""

    def __init__(self, limits: GuardLimits):
        self.limits = limits
        self.sizes: OrderedDict[int, SizeWindow] = OrderedDict()
        self.b_failure_run = 0

    def reset(self) -> None:
        self.sizes.clear()
        self.b_failure_run = 0

    def record(self, variant: Variant, size: int, ok: bool, seconds: float, at: float) -> None:
        """One request's outcome: `ok` False only when the model run failed."""
        window = self.sizes.get(size)
        if window is None:
            window = self.sizes[size] = SizeWindow(self.limits.window)
            if len(self.sizes) > MAX_SIZES:
                self.sizes.popitem(last=False)
        self.sizes.move_to_end(size)
        if variant == CANDIDATE:
            self.b_failure_run = 0 if ok else self.b_failure_run + 1
        window.add(variant, Outcome(at, ok, seconds))

    def failure_run_due(self) -> bool:
        """B's failure run is long enough to judge (also worth judging after an A outcome)."""
        return self.b_failure_run >= self.limits.max_consecutive_failures

    def verdict(self) -> str | None:
        if self.failure_run_due() and not self._a_failed():
            return f"B failed {self.b_failure_run} requests in a row while A failed none"
        for size, window in self.sizes.items():
            a, b = window.aligned()
            if not a or not b:
                continue  # latency is compared only at the same size and time
            reason = latency_verdict(
                size, [o.seconds for o in a if o.ok], [o.seconds for o in b if o.ok], self.limits
            )
            if reason is not None:
                return reason
        return error_verdict(*self._error_counts(), self.limits)

    def _error_counts(self) -> tuple[int, int, int, int]:
        """(A failed, A total, B failed, B total) over the sizes that count (module docstring)."""
        a_answered = any(o.ok for window in self.sizes.values() for o in window.arms[CURRENT])
        a_failed = a_total = b_failed = b_total = 0
        for window in self.sizes.values():
            a, b = window.aligned()
            if not a and not a_answered:
                b = []  # nothing shows yet that any input can be answered
            if not b and not any(o.ok for o in a):
                a = []  # A only failed at a size B has not served
            a_failed += sum(1 for o in a if not o.ok)
            a_total += len(a)
            b_failed += sum(1 for o in b if not o.ok)
            b_total += len(b)
        return a_failed, a_total, b_failed, b_total

    def _a_failed(self) -> bool:
        return any(not o.ok for window in self.sizes.values() for o in window.arms[CURRENT])
