"""Following the store: committing a change, and the sync loop that never dies.

Every change is written first (generation + 1, compare-and-set) and applied after, by the same
`apply` every worker uses to follow the store, so the worker that took a request is not special.
A change is answered only once its write is known: a write whose answer was lost is read back
by its change id. A store found behind what this worker serves (a Redis restored from an older
snapshot) gets this worker's state back before, and in the same write as, any change on it;
a store that went elsewhere (a history this worker never saw) is followed, never overwritten.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable

from edgeserve.errors import StateUnavailable, one_line
from edgeserve.observability.logging import log
from edgeserve.state.schema import MAX_GENERATION, InvalidState, RuntimeState, parse_state
from edgeserve.state.store import OutcomeUnknown, StateStore, StoreUnavailable

RESYNC_SECONDS = 5.0
"""Re-read at least this often, even without a change notice (a missed notice heals itself)."""
MIN_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0
MAX_COMMIT_ATTEMPTS = 20

Change = Callable[[RuntimeState], RuntimeState]
Apply = Callable[[RuntimeState], Awaitable[None]]


def new_change_id() -> str:
    """A name for one change, unique across the fleet and its restarts (64 random bits)."""
    return secrets.token_hex(8)


def unkept_model(state: RuntimeState) -> str | None:
    """Why `state` must never be written: a slot names an original file, not a kept copy."""
    for slot, model in sorted(state.models.items()):
        if not model.content_addressed:
            return (
                f"model {slot} is named by its original file {model.path}, not a kept copy (the "
                "state folder could not take one): make the state folder writable and restart"
            )
    return None


class StateSync:
    """One worker's link to the store: validated reads, commits, and the loop that follows."""

    def __init__(
        self,
        store: StateStore,
        apply: Apply,
        current: Callable[[], RuntimeState],
        on_status: Callable[[], None] = lambda: None,
    ):
        self.store = store
        self.apply = apply
        self.current = current
        self.on_status = on_status
        self.store_up = True
        self.store_invalid: str | None = None
        """Why the stored document is not a valid state, while it is not."""
        self.last_error: str | None = None
        # One commit at a time per worker: races are then only between workers and instances.
        self.commit_lock = asyncio.Lock()

    @property
    def store_label(self) -> str:
        """`state_store` in GET /admin/config: the backend, or "unreachable"."""
        return self.store.kind if self.store_up else "unreachable"

    async def read(self) -> RuntimeState | None:
        """The stored state, validated, noting whether the store answered and held a valid one."""
        try:
            state = await read_state(self.store)
        except StoreUnavailable:
            self._store_is(up=False)
            raise
        except InvalidState as error:
            self._store_is(up=True, invalid=str(error))
            raise
        self._store_is(up=True, invalid=None)
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
            base = self._base(stored)
            if base.generation >= MAX_GENERATION - 1:
                raise StateUnavailable(
                    f"the stored generation {base.generation} is at the limit 2^53 - 1, so no "
                    "change can follow it; nothing was changed: renumber the stored state "
                    "(see the runbook), then retry"
                )
            change_id = new_change_id()
            new_state = change(base).written_after(base, change_id)
            if (unkept := unkept_model(new_state)) is not None:
                raise StateUnavailable(f"{unkept}; nothing was changed")
            expected = stored.generation if stored is not None else None
            if await self._write(expected, new_state, change_id):
                await self.apply(new_state)
                return new_state
        raise StateUnavailable(
            f"the state changed under this change {MAX_COMMIT_ATTEMPTS} times in a row: retry"
        )

    def _base(self, stored: RuntimeState | None) -> RuntimeState:
        """The state a change applies to: the stored one, unless the store lost what this
        worker serves (empty, or holding a generation it was written on top of). Then the
        change goes on what this worker serves, and its one write puts both back."""
        current = self.current()
        if stored is not None and not current.follows(stored):
            return stored
        log.warning(
            "state_store_behind",
            store=self.store.kind,
            serving_generation=current.generation,
            found=None if stored is None else stored.generation,
        )
        return current

    async def _write(self, expected: int | None, new_state: RuntimeState, change_id: str) -> bool:
        """Compare-and-set `new_state` (the change `change_id`); a write whose answer was lost
        is read back before this answers."""
        try:
            return await self.store.compare_and_set(expected, new_state.to_dict())
        except OutcomeUnknown as error:
            lost = error
        except StoreUnavailable as error:
            raise StateUnavailable(f"{error}; nothing was changed") from None
        try:
            landed = await self.store.resolve(change_id)
        except StoreUnavailable as error:
            raise StateUnavailable(
                f"the store did not confirm whether this change was saved ({lost}; reading it "
                f"back: {error}): check GET /admin/config before you retry"
            ) from None
        log.warning(
            "state_write_resolved",
            store=self.store.kind,
            generation=new_state.generation,
            landed=landed,
            error=str(lost),
        )
        if not landed:
            raise StateUnavailable(
                f"{lost}; read back, the change was not saved and never will be: "
                "nothing was changed, retry"
            )
        return True

    async def follow(self) -> None:
        """Apply every newer generation the store holds; never ends but by cancellation."""
        from edgeserve.observability import metrics

        failures = 0
        while True:
            try:
                await self.store.wait_for_change(RESYNC_SECONDS)
                stored = await self.read()
                if stored is None or self.current().follows(stored):
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
        """Write back what this worker serves when the store lost it (a Redis back empty or
        restored from an older snapshot).

        A compare-and-set on what was found, so workers race safely: an earlier generation
        written first is overwritten by a later one, and the fleet ends on the latest it served.
        Only what this state was written on top of is overwritten: a change someone made on
        the store meanwhile is not in this state's history, so it is followed instead."""
        current = self.current()
        if unkept_model(current) is not None:
            return  # never written: the state folder could not keep this worker's models
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

    def _store_is(self, *, up: bool, invalid: str | None = None) -> None:
        """Record what the last read found; a store that did not answer keeps its last verdict
        on validity (it may hold the same invalid document when it answers again)."""
        from edgeserve.observability import metrics

        self.store_up = up
        metrics.state_store_up.set(int(up))
        if up and invalid != self.store_invalid:
            self.store_invalid = invalid
            self.on_status()


async def read_state(store: StateStore) -> RuntimeState | None:
    """The stored state, validated; None when the store holds none.

    Raises StoreUnavailable, or InvalidState when what it holds is not a valid state."""
    try:
        raw = await store.read()
    except ValueError as error:
        raise InvalidState(f"the stored state is not JSON ({one_line(error)})") from None
    return None if raw is None else parse_state(raw)
