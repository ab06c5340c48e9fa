"""Disagreements shadow saw, kept on disk (CAPTURE_DISAGREEMENTS) by a thread of their own.

Never on a request's path: an offer returns at once, at most MAX_PENDING captures wait for the
writer thread and the rest are dropped and counted. A folder that cannot take a capture (full,
read-only) is counted every time and logged once, until a capture is kept there again."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from edgeserve.errors import one_line
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.state.disagreement_store import Answer, Disagreement, DisagreementStore

MAX_PENDING = 8
"""Captures waiting for the disk at once, per worker: a slow disk costs at most these images."""


class DisagreementCapture:
    def __init__(self, store: DisagreementStore, enabled: bool):
        self.store = store
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="capture") if enabled else None
        self.pending = threading.BoundedSemaphore(MAX_PENDING)
        self.failing = False
        """The last capture could not be written (touched by the writer thread only)."""

    def offer(self, image: bytes, a: Answer, b: Answer, trace_id: str) -> None:
        """Keep this disagreement, later and elsewhere; a no-op while capture is off."""
        if self.writer is None:
            return
        if not self.pending.acquire(blocking=False):
            metrics.disagreement_captures.labels("dropped").inc()
            return
        disagreement = Disagreement(image=image, a=a, b=b, trace_id=trace_id, at=time.time())
        self.writer.submit(self._keep, disagreement)

    def _keep(self, disagreement: Disagreement) -> None:
        try:
            kept = self.store.keep(disagreement)
        except Exception as error:  # a full or read-only disk is counted, never raised
            metrics.disagreement_captures.labels("failed").inc()
            if not self.failing:
                self.failing = True
                log.warning(
                    "disagreement_capture_failed",
                    folder=str(self.store.folder),
                    error=one_line(error, limit=200),
                )
            return
        finally:
            self.pending.release()
        metrics.disagreement_captures.labels("kept" if kept else "too_large").inc()
        if self.failing:
            self.failing = False
            log.info("disagreement_capture_recovered", folder=str(self.store.folder))

    async def close(self) -> None:
        """Write what is waiting (MAX_PENDING at most), off the event loop."""
        if self.writer is not None:
            await asyncio.to_thread(self.writer.shutdown, True)
