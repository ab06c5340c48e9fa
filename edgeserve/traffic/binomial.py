"""Exact binomial tails, sound at any sample size, no scipy needed.

The per-class flip gate and the paired (McNemar) accuracy gate are both one-sided exact
binomial tests on counts a rollout step collects. Each tail is summed from its end nearest the
mean outward, term by term, and stops once the terms no longer count: a rollout judged every
second on thousands of samples costs a few dozen terms, not thousands."""

from __future__ import annotations

import math

NEGLIGIBLE = 1e-17
"""A term this small beside the tail's first (its largest) no longer changes the sum."""


def _log_pmf(k: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def _tail(k: int, n: int, p: float, upward: bool) -> float:
    """P(X >= k) if `upward`, else P(X <= k), for 0 < p < 1 and k on that tail's side of the
    mode, where each term is smaller than the one before."""
    odds = p / (1 - p)
    term = total = 1.0
    i = k
    while i < n if upward else i > 0:
        term *= (n - i) / (i + 1) * odds if upward else i / (n - i + 1) / odds
        i += 1 if upward else -1
        total += term
        if term < NEGLIGIBLE * total:
            break
    return min(1.0, math.exp(_log_pmf(k, n, p)) * total)


def at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    if k > n * p:
        return _tail(k, n, p, upward=True)
    return 1.0 - _tail(k - 1, n, p, upward=False)


def at_most(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k >= n:
        return 1.0
    if k < 0 or p >= 1.0:
        return 0.0
    if p <= 0.0:
        return 1.0
    if k < n * p:
        return _tail(k, n, p, upward=False)
    return 1.0 - _tail(k + 1, n, p, upward=True)
