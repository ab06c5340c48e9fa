"""The canary guard: judge B against A over a sliding window of recent requests."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class GuardLimits:
    window: int
    min_samples: int
    max_error_rate: float
    max_latency_ratio: float


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


class CanaryGuard:
    """Keeps (ok, seconds) per variant; `verdict` says why B must go, or None."""

    def __init__(self, limits: GuardLimits):
        self.limits = limits
        self.outcomes: dict[str, deque[tuple[bool, float]]] = {
            "A": deque(maxlen=limits.window),
            "B": deque(maxlen=limits.window),
        }

    def record(self, variant: str, ok: bool, seconds: float) -> None:
        self.outcomes[variant].append((ok, seconds))

    def reset(self) -> None:
        for window in self.outcomes.values():
            window.clear()

    def verdict(self) -> str | None:
        b = self.outcomes["B"]
        if len(b) < self.limits.min_samples:
            return None
        error_rate = sum(1 for ok, _ in b if not ok) / len(b)
        if error_rate > self.limits.max_error_rate:
            return (
                f"B error rate {error_rate:.1%} over the last {len(b)} requests "
                f"is above {self.limits.max_error_rate:.1%}"
            )
        a_latencies = [s for ok, s in self.outcomes["A"] if ok]
        b_latencies = [s for ok, s in b if ok]
        if len(a_latencies) < self.limits.min_samples or not b_latencies:
            return None
        a_p95, b_p95 = p95(a_latencies), p95(b_latencies)
        if a_p95 > 0 and b_p95 / a_p95 > self.limits.max_latency_ratio:
            return (
                f"B p95 latency {b_p95 * 1000:.1f} ms is {b_p95 / a_p95:.1f}x A's "
                f"{a_p95 * 1000:.1f} ms, above {self.limits.max_latency_ratio:g}x"
            )
        return None
