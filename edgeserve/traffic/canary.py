"""The canary guard: judge B against A on what only the model controls, as often as it likes.

What a client controls never moves the verdict. Only model failures count (the session run
failed), never bad input. Only the session run is timed, never decoding. Run times are compared
only with runs at the same input size (the `img_size` asked for, 0 for the model's default), so
big images or unusual sizes sent to B cannot make it look slow.

The guard looks after every request, so every significance test in it is sequential
(traffic.sequential): its chance of ever crossing under the null, however long B serves, is
bounded. The three tests share a 0.5 % budget (a third each). Counts accumulate from the time the
current B started serving; nothing is forgotten until B changes (`reset`).

Verdicts (any one rolls B back):
- latency: B's runs are slower than A's in time-matched pairs at one size (the sign of each
  pair, a fair coin when they run alike), and for some size B's p95 run time over the recent
  window is above A's by both the ratio and the absolute margin, each arm with `min_samples`;
- errors: B's failure rate is above A's, each arm has `min_samples` outcomes, and either the
  paired test says B fails more often than A or the limit test says B fails more often than
  `max_error_rate` (traffic.canary_errors). Once A has answered anything, B's outcomes at any
  size count (a candidate on trial gets no benefit of the doubt); A's count where A has
  answered or B was sent (a size A only failed at says nothing about B);
- fast path: `max_consecutive_failures` B failures in a row while A failed none of its last
  `window` requests, even before A has answered anything (right after a restart, with
  canary-forced traffic), so a broken B costs at most that many requests.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from edgeserve.traffic.canary_errors import ErrorRates
from edgeserve.traffic.pairing import Pairing
from edgeserve.traffic.sequential import SequentialTest
from edgeserve.variants import CANDIDATE, CURRENT, VARIANTS, Variant, other

ALPHA = 0.005
"""The chance of ever rolling back a B that runs and fails exactly like A, split between the
paired error test, the error-rate limit test and the latency test: half of the 1 % the
contract allows, so the bound still holds with two workers judging on their own."""
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


def latency_verdict(
    size: int, a: list[float], b: list[float], slower: SequentialTest, limits: GuardLimits
) -> str | None:
    """Why B is too slow at this input size, or None (run seconds of answered requests)."""
    if not slower.crossed or len(a) < limits.min_samples or len(b) < limits.min_samples:
        return None
    a_p95, b_p95 = p95(a), p95(b)
    delta_ms = (b_p95 - a_p95) * 1000
    if b_p95 <= a_p95 * limits.max_latency_ratio or delta_ms <= limits.min_latency_delta_ms:
        return None
    shown = f"img_size {size}" if size else "the default img_size"
    return (
        f"B p95 inference time {b_p95 * 1000:.1f} ms is {b_p95 / max(a_p95, 1e-9):.1f}x "
        f"A's {a_p95 * 1000:.1f} ms (+{delta_ms:.1f} ms) at {shown}, above "
        f"{limits.max_latency_ratio:g}x and +{limits.min_latency_delta_ms:g} ms "
        f"({len(b)} vs {len(a)} requests; B slower in {slower.hits} of "
        f"{slower.hits + slower.misses} time-matched pairs, e-value {slower.evalue():.3g})"
    )


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


@dataclass
class SizeRecord:
    """One input size: the p95 windows, the pairing of answered run times, who has been there."""

    window: SizeWindow
    runs: Pairing[float] = field(default_factory=Pairing)
    a_answered: bool = False
    b_sent: bool = False


class CanaryGuard:
    """Records outcomes per variant and input size; `verdict` says why B must go, or None.

    Everything is counted since B started serving: `reset` when B changes."""

    def __init__(self, limits: GuardLimits):
        self.limits = limits
        self.reset()

    def reset(self) -> None:
        self.sizes: OrderedDict[int, SizeRecord] = OrderedDict()
        self.errors = ErrorRates(self.limits.min_samples, self.limits.max_error_rate, ALPHA / 3)
        self.slower = SequentialTest(0.5, ALPHA / 3)
        """Hits: B's run took longer than A's in a time-matched pair at one size."""
        self.a_recent: deque[bool] = deque(maxlen=self.limits.window)
        self.a_recent_failures = 0
        self.a_answered = False
        self.b_failure_run = 0

    def record(self, variant: Variant, size: int, ok: bool, seconds: float, at: float) -> None:
        """One request's outcome: `ok` False only when the model run failed."""
        here = self.sizes.get(size)
        if here is None:
            here = self.sizes[size] = SizeRecord(SizeWindow(self.limits.window))
            if len(self.sizes) > MAX_SIZES:
                self.sizes.popitem(last=False)
        self.sizes.move_to_end(size)
        here.window.add(variant, Outcome(at, ok, seconds))
        if variant == CANDIDATE:
            self.b_failure_run = 0 if ok else self.b_failure_run + 1
            here.b_sent = True
            if self.a_answered:  # before A answers anything, only the fast path judges B
                self.errors.record(variant, ok)
        else:
            self._record_a(here, ok)
        if ok:
            pair = here.runs.add(variant, seconds)
            if pair is not None and pair[0] != pair[1]:
                self.slower.add(pair[1] > pair[0])

    def _record_a(self, here: SizeRecord, ok: bool) -> None:
        if len(self.a_recent) == self.a_recent.maxlen and not self.a_recent[0]:
            self.a_recent_failures -= 1
        self.a_recent.append(ok)
        self.a_recent_failures += not ok
        self.a_answered = self.a_answered or ok
        here.a_answered = here.a_answered or ok
        if ok or here.a_answered or here.b_sent:
            self.errors.record(CURRENT, ok)  # a size A only failed at says nothing about B

    def failure_run_due(self) -> bool:
        """B's failure run is long enough to judge (also worth judging after an A outcome)."""
        return self.b_failure_run >= self.limits.max_consecutive_failures

    def verdict(self) -> str | None:
        if self.failure_run_due() and not self.a_recent_failures:
            return f"B failed {self.b_failure_run} requests in a row while A failed none"
        if self.slower.crossed:
            for size, here in self.sizes.items():
                a, b = here.window.aligned()
                reason = latency_verdict(
                    size,
                    [o.seconds for o in a if o.ok],
                    [o.seconds for o in b if o.ok],
                    self.slower,
                    self.limits,
                )
                if reason is not None:
                    return reason
        return self.errors.verdict()
