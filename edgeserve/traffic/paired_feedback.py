"""Paired feedback: for an A answer that B also answered in shadow, whether each was right.

When the true label of such an answer comes back, both models are judged on the very same
input: the accuracy gate can then use the pairs where only one was right (McNemar) instead of
comparing two accuracies measured on different requests. B's answer is kept per feedback
nonce until the feedback arrives, at most `capacity` of them (oldest first out), per worker.
"""

from __future__ import annotations

from collections import OrderedDict

CORRECT, WRONG = "correct", "wrong"


def outcome(right: bool) -> str:
    return CORRECT if right else WRONG


class ShadowAnswers:
    """B's top-1 label in shadow, per feedback nonce of the A answer it shadowed."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.labels: OrderedDict[str, tuple[str, str]] = OrderedDict()
        """nonce -> (B's version, B's top-1 label)."""

    def remember(self, nonce: str, b_version: str, b_label: str) -> None:
        self.labels[nonce] = (b_version, b_label)
        if len(self.labels) > self.capacity:
            self.labels.popitem(last=False)

    def take(self, nonce: str, b_version: str | None) -> str | None:
        """B's label for this answer, once, if the B that gave it still serves as B."""
        version, label = self.labels.pop(nonce, (None, None))
        return label if version is not None and version == b_version else None
