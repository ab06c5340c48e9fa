"""The one small interface every state backend implements (a file on one host, Redis for a fleet).

A store holds one JSON document. It knows nothing of what the document means except its
`generation`, on which every write is a compare-and-set, and its `change_id` (with the
`history` of earlier ones), by which a write whose answer was lost is found again. Validation
is the schema's job.

Optional capabilities, looked up with getattr by the start-up (edgeserve.state.sync):
`async discard_invalid() -> object` empties a store whose document is invalid (the file store
moves it aside and answers where); a store without it keeps the document and is not seeded.
`clean_stale_temp_files() -> list` (blocking) removes what a crashed writer left.
"""

from __future__ import annotations

from typing import Any, Protocol


class StoreUnavailable(Exception):
    """The store cannot be read or written now (disk full or read-only, Redis down)."""


class OutcomeUnknown(StoreUnavailable):
    """A write was sent but its answer never came (a timeout, a dropped connection): it may
    have landed. Only `resolve` can tell, so the writer must not say "nothing was changed"."""


class StateStore(Protocol):
    kind: str
    """"file" or "redis": shown by GET /admin/config as `state_store`."""

    async def read(self) -> Any | None:
        """The stored document as decoded JSON, or None when the store holds none.

        Raises StoreUnavailable when the store cannot be reached or read, ValueError when
        what it holds is not JSON."""

    async def compare_and_set(
        self, expected_generation: int | None, document: dict[str, Any]
    ) -> bool:
        """Write `document` only if the stored generation is `expected_generation` (None: empty).

        True when written (or when this very document, by its `change_id`, already was), False
        when someone else wrote first. Raises StoreUnavailable when nothing was stored, and
        OutcomeUnknown when the write may have been stored: then call `resolve`."""

    async def resolve(self, change_id: str) -> bool:
        """Whether the write of the document `change_id` landed (it is the stored one or in the
        stored one's history); once this answers False, that write never lands.

        Raises StoreUnavailable when the store cannot answer (the outcome stays unknown)."""

    async def wait_for_change(self, timeout: float) -> None:
        """Return when the document may have changed, or after `timeout` seconds at most."""

    async def close(self) -> None:
        """Release connections and background tasks."""
