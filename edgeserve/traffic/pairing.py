"""Time-matched pairs of an A outcome and a B outcome, whatever the traffic split.

Each outcome waits for the other arm's next one; while it waits, a newer outcome of its own arm
replaces it. Which outcomes pair depends only on the order they arrive, never on their values,
so under identical A and B the two halves of a pair are exchangeable: B's half is the worse one
exactly as often as A's. That makes the comparison a fair coin whatever the failure rate, the
load or the split (at 90/10 B's outcomes pair with A's latest).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from edgeserve.variants import CANDIDATE, CURRENT, Variant, other

T = TypeVar("T")


class Pairing(Generic[T]):
    def __init__(self) -> None:
        self.waiting: dict[Variant, T | None] = {CURRENT: None, CANDIDATE: None}

    def add(self, variant: Variant, value: T) -> tuple[T, T] | None:
        """(A's value, B's value) when `value` completes a pair, else None (it waits)."""
        partner = self.waiting[other(variant)]
        if partner is None:
            self.waiting[variant] = value
            return None
        self.waiting = {CURRENT: None, CANDIDATE: None}
        return (value, partner) if variant == CURRENT else (partner, value)
