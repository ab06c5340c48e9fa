"""B's shadow answers kept for paired feedback, through a store that may fail.

The store is best effort: a call that fails or passes `DEADLINE_SECONDS` is counted, logged once
until one succeeds again, and leaves the answer unpaired (the unpaired gate judges it), so it
never fails or holds up an inference or a feedback request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from edgeserve.errors import one_line
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.traffic.paired_feedback import AnswerStore

DEADLINE_SECONDS = 0.25
"""The most a feedback request or a shadow run waits for the store."""
T = TypeVar("T")


class ShadowAnswers:
    """B's top-1 label in shadow, per feedback nonce of the A answer it shadowed."""

    def __init__(self, store: AnswerStore):
        self.store = store
        self.failing = False
        """The last call failed: logged once, until one succeeds again."""

    async def remember(self, nonce: str, b_version: str, b_label: str) -> None:
        await self._call("remember", self.store.put(nonce, f"{b_version}\n{b_label}"))

    async def take(self, nonce: str, b_version: str | None) -> str | None:
        """B's label for this answer, once, if the B that gave it still serves as B."""
        if b_version is None:
            return None
        kept = await self._call("take", self.store.take(nonce))
        version, _, label = (kept or "").partition("\n")
        return label if kept and version == b_version else None

    async def _call(self, operation: str, call: Awaitable[T]) -> T | None:
        try:
            result = await asyncio.wait_for(call, DEADLINE_SECONDS)
        except Exception as error:  # any store failure leaves the answer unpaired
            metrics.paired_store_errors.labels(operation).inc()
            if not self.failing:
                self.failing = True
                log.warning(
                    "paired_store_failed", operation=operation, error=one_line(error, limit=200)
                )
            return None
        if self.failing:
            self.failing = False
            log.info("paired_store_recovered", operation=operation)
        return result

    async def close(self) -> None:
        await self.store.close()
