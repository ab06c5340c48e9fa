"""Following the store: committing a change, and the sync loop that never dies.

Every change is written first (generation + 1, compare-and-set) and applied after, by the same
`apply` every worker uses to follow the store, so the worker that took a request is not special.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from edgeserve.errors import StateUnavailable, one_line
from edgeserve.observability.logging import log
from edgeserve.state.schema import InvalidState, RuntimeState, parse_state
from edgeserve.state.store import StateStore, StoreUnavailable

RESYNC_SECONDS = 5.0
"""Re-read at least this often, even without a change notice (a missed notice heals itself)."""
MIN_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0
MAX_COMMIT_ATTEMPTS = 20

Change = Callable[[RuntimeState], RuntimeState]
Apply = Callable[[RuntimeState], Awaitable[None]]


class StateSync:
    """One worker's link to the store: validated reads, commits, and the loop that follows."""

    def __init__(self, store: StateStore, apply: Apply, current: Callable[[], RuntimeState]):
        self.store = store
        self.apply = apply
        self.current = current
        self.store_up = True
        self.last_error: str | None = None
        # One commit at a time per worker: races are then only between workers and instances.
        self.commit_lock = asyncio.Lock()

    @property
    def store_label(self) -> str:
        """`state_store` in GET /admin/config: the backend, or "unreachable"."""
        return self.store.kind if self.store_up else "unreachable"

    async def read(self) -> RuntimeState | None:
        """The stored state, validated, noting whether the store answered."""
        try:
            state = await read_state(self.store)
        except StoreUnavailable:
            self._store_is(up=False)
            raise
        self._store_is(up=True)
        return state

    async def commit(self, change: Change) -> RuntimeState:
        """Persist `change` as generation + 1, then apply it here; retried on a lost race.

        InvalidState from `change` means the change itself is refused; StateUnavailable that
        it could not be written. Either way nothing changed live."""
        async with self.commit_lock:
            return await self._commit(change)

    async def _commit(self, change: Change) -> RuntimeState:
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            if attempt:  # lost a race: let the winner's writers finish before trying again
                await asyncio.sleep(random.uniform(0, MIN_BACKOFF_SECONDS / 10 * attempt))
            try:
                stored = await self.read()
            except StoreUnavailable as error:
                raise StateUnavailable(f"{error}; nothing was changed") from None
            except InvalidState as error:
                raise StateUnavailable(
                    f"the stored state is invalid ({error}): fix or remove it, then retry"
                ) from None
            # An empty store (a Redis that lost its data) is re-seeded from what this worker serves.
            base = stored if stored is not None else self.current()
            new_state = change(base).at_generation(base.generation + 1)
            expected = stored.generation if stored is not None else None
            try:
                written = await self.store.compare_and_set(expected, new_state.to_dict())
            except StoreUnavailable as error:
                raise StateUnavailable(f"{error}; nothing was changed") from None
            if written:
                await self.apply(new_state)
                return new_state
        raise StateUnavailable(
            f"the state changed under this change {MAX_COMMIT_ATTEMPTS} times in a row: retry"
        )

    async def follow(self) -> None:
        """Apply every newer generation the store holds; never ends but by cancellation."""
        from edgeserve.observability import metrics

        failures = 0
        while True:
            try:
                await self.store.wait_for_change(RESYNC_SECONDS)
                stored = await self.read()
                if stored is None or stored.generation < self.current().generation:
                    await self.reseed(stored)
                else:
                    await self.apply(stored)
            except asyncio.CancelledError:
                return  # shutting down: a quiet end, not an error
            except Exception as error:  # a watcher that dies is a bug: count, log, keep serving
                metrics.state_sync_errors.inc()
                self._report(error)
                failures += 1
                await asyncio.sleep(
                    min(MAX_BACKOFF_SECONDS, MIN_BACKOFF_SECONDS * 2 ** min(failures, 8))
                )
                continue
            failures = 0
            if self.last_error is not None:
                log.info("state_sync_recovered", generation=self.current().generation)
                self.last_error = None

    async def reseed(self, stored: RuntimeState | None) -> None:
        """Write back what this worker serves when the store lost it (a Redis back empty).

        A compare-and-set on what was found, so workers race safely: a lower generation written
        first is overwritten by a higher one, and the fleet ends on the highest it served."""
        current = self.current()
        found = None if stored is None else stored.generation
        if await self.store.compare_and_set(found, current.to_dict()):
            log.warning(
                "state_reseeded", store=self.store.kind, generation=current.generation, found=found
            )

    def _report(self, error: Exception) -> None:
        """Log each distinct error once, not once per poll."""
        message = f"{type(error).__name__}: {one_line(error)}"
        if message != self.last_error:
            log.error(
                "state_sync_failed",
                error=message,
                store=self.store.kind,
                serving_generation=self.current().generation,
            )
            self.last_error = message

    def _store_is(self, *, up: bool) -> None:
        from edgeserve.observability import metrics

        self.store_up = up
        metrics.state_store_up.set(int(up))


async def read_state(store: StateStore) -> RuntimeState | None:
    """The stored state, validated; None when the store holds none.

    Raises StoreUnavailable, or InvalidState when what it holds is not a valid state."""
    try:
        raw = await store.read()
    except ValueError as error:
        raise InvalidState(f"the stored state is not JSON ({one_line(error)})") from None
    return None if raw is None else parse_state(raw)
