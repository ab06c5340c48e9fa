"""Paired feedback: for an A answer that B also answered in shadow, whether each was right.

When the true label of such an answer comes back, both models are judged on the very same
input: the accuracy gate can then use the pairs where only one was right (McNemar) instead of
comparing two accuracies measured on different requests. B's answer is kept per feedback nonce
in a store every worker reads (a folder on this host, or Redis for a fleet), because feedback
lands on any worker or instance (see traffic.shadow_answers). Imports no metrics: the CLI reads
the outcome names.
"""

from __future__ import annotations

from typing import Protocol

CORRECT, WRONG = "correct", "wrong"


def outcome(right: bool) -> str:
    return CORRECT if right else WRONG


class AnswerStore(Protocol):
    """Where B's answers wait, by nonce, for every worker: `take` answers one once."""

    async def put(self, nonce: str, value: str) -> None: ...
    async def take(self, nonce: str) -> str | None: ...
    async def close(self) -> None: ...
