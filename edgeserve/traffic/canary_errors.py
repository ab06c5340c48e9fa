"""The guard's error-rate tests: model failures of both arms since B started serving.

Two sequential tests, each valid however often it is looked at (traffic.sequential), on counts
that only grow until B changes:
- paired: of the time-matched pairs (traffic.pairing) where exactly one arm failed, B is the one
  that failed more often than half the time (a fair coin when B fails like A, at any rate);
- limit: B's failure rate is above `max_error_rate`.
Either one rolls B back once each arm has `min_samples` outcomes and B's rate is above A's.
"""

from __future__ import annotations

from edgeserve.traffic.pairing import Pairing
from edgeserve.traffic.sequential import SequentialTest
from edgeserve.variants import CANDIDATE, VARIANTS, Variant


class ErrorRates:
    def __init__(self, min_samples: int, max_error_rate: float, alpha: float):
        self.min_samples = min_samples
        self.max_error_rate = max_error_rate
        self.failed = dict.fromkeys(VARIANTS, 0)
        self.total = dict.fromkeys(VARIANTS, 0)
        self.pairs: Pairing[bool] = Pairing()
        self.b_worse = SequentialTest(0.5, alpha)
        """Hits: B failed and A answered; misses: A failed and B answered."""
        self.b_over_limit = SequentialTest(max_error_rate, alpha)
        """Hits: B failed; misses: B answered."""

    def record(self, variant: Variant, ok: bool) -> None:
        self.total[variant] += 1
        self.failed[variant] += not ok
        if variant == CANDIDATE and self.max_error_rate < 1:
            self.b_over_limit.add(not ok)
        pair = self.pairs.add(variant, ok)
        if pair is not None and pair[0] != pair[1]:
            self.b_worse.add(pair[0])  # A answered, so B is the one that failed

    def rate(self, variant: Variant) -> float:
        return self.failed[variant] / self.total[variant] if self.total[variant] else 0.0

    def verdict(self) -> str | None:
        """Why B fails too often against A, or None."""
        if min(self.total.values()) < self.min_samples:
            return None
        a_rate, b_rate = self.rate("A"), self.rate("B")
        if b_rate <= a_rate:
            return None
        if self.b_worse.crossed:
            worse = self.b_worse
            why = (
                f"significantly above A's {a_rate:.1%} (B alone failed {worse.hits} of "
                f"{worse.hits + worse.misses} time-matched pairs where one arm failed, "
                f"e-value {worse.evalue():.3g})"
            )
        elif self.b_over_limit.crossed:
            why = (
                f"significantly above {self.max_error_rate:.1%} "
                f"(e-value {self.b_over_limit.evalue():.3g})"
            )
        else:
            return None
        return (
            f"B error rate {b_rate:.1%} ({self.failed['B']} model failures in "
            f"{self.total['B']} requests) is {why}"
        )
