"""Exact binomial tails, summed in log space: sound at any sample size, no scipy needed.

The per-class flip gate and the paired (McNemar) accuracy gate are both one-sided exact
binomial tests on counts a rollout step collects."""

from __future__ import annotations

import math


def _log_pmf(k: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def _log_sum(terms: list[float]) -> float:
    top = max(terms)
    return top + math.log(sum(math.exp(term - top) for term in terms))


def at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    return min(1.0, math.exp(_log_sum([_log_pmf(i, n, p) for i in range(k, n + 1)])))


def at_most(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    return 1.0 - at_least(k + 1, n, p) if k < n else 1.0
