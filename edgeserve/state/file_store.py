"""The state document in one JSON file: one host, every worker, no extra service.

Writes take an exclusive flock on a lock file beside the state, check the generation, and
replace the file atomically (temp, fsync, rename, fsync the folder), so a reader sees the old
document or the new one, never half of either. Reads take no lock for the same reason.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgeserve.state.store import StoreUnavailable

POLL_SECONDS = 0.2
Signature = tuple[int, int, int] | None


class FileStore:
    kind = "file"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._seen: Signature = None

    # --- the StateStore interface -------------------------------------------------

    async def read(self) -> Any | None:
        return await asyncio.to_thread(self._read)

    async def compare_and_set(
        self, expected_generation: int | None, document: dict[str, Any]
    ) -> bool:
        return await asyncio.to_thread(self._compare_and_set, expected_generation, document)

    async def resolve(self, change_id: str) -> bool:
        """A write here either finished or raised, so this only reads back what is stored."""
        return await asyncio.to_thread(self._resolve, change_id)

    async def wait_for_change(self, timeout: float) -> None:
        """Poll the file's (inode, mtime, size), cheap enough every 0.2 s: a replace gives it a new
        inode; the caller's periodic re-read covers the rare reuse of the same one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._signature() != self._seen:
                return
            await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    async def close(self) -> None:
        return None

    # --- file-only capabilities -----------------------------------------------------

    def clean_stale_temp_files(self) -> list[Path]:
        """Remove the `.<name>.<pid>.tmp` files a crashed writer left (none if read-only)."""
        try:
            with self._locked():  # no writer is between temp and rename while we hold the lock
                stale = list(self.path.parent.glob(f".{self.path.name}.*.tmp"))
                for temp in stale:
                    temp.unlink(missing_ok=True)
        except OSError:
            return []
        return stale

    async def discard_invalid(self) -> Path:
        """Move an unusable document aside to `<path>.corrupt-<time>`; answers where it went."""
        return await asyncio.to_thread(self._discard_invalid)

    def _discard_invalid(self) -> Path:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns()}")
        try:
            with self._locked():
                os.replace(self.path, aside)
        except OSError as error:
            raise StoreUnavailable(_reason("cannot move aside", self.path, error)) from None
        return aside

    # --- blocking parts, run in a thread ----------------------------------------------

    def _signature(self) -> Signature:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _read(self) -> Any | None:
        # Taken before reading: a replace during the read is then seen by the next wait.
        self._seen = self._signature()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreUnavailable(_reason("cannot read", self.path, error)) from None
        return json.loads(text)  # ValueError for what is not JSON, UnicodeDecodeError included

    def _compare_and_set(self, expected: int | None, document: dict[str, Any]) -> bool:
        try:
            with self._locked():
                stored = _stored(self.path)
                if _carries(stored, document.get("change_id")):
                    return True  # this very change, written before
                if _generation_of(stored) != expected:
                    return False
                self._write(document)
                return True
        except OSError as error:
            raise StoreUnavailable(_reason("cannot write", self.path, error)) from None

    def _resolve(self, change_id: str) -> bool:
        try:
            with self._locked():
                return _carries(_stored(self.path), change_id)
        except OSError as error:
            raise StoreUnavailable(_reason("cannot read", self.path, error)) from None

    def _write(self, document: dict[str, Any]) -> None:
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(temp, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2, sort_keys=True, allow_nan=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _stored(path: Path) -> Any:
    """The decoded document on disk, None when there is none, _UNREADABLE when not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return _UNREADABLE


def _generation_of(stored: Any) -> int | object | None:
    """The stored generation; a sentinel no writer expects when the file is not a state."""
    if stored is None:
        return None
    generation = stored.get("generation") if isinstance(stored, dict) else None
    if isinstance(generation, bool) or not isinstance(generation, int):
        return _UNREADABLE
    return generation


def _carries(stored: Any, change_id: Any) -> bool:
    """The stored document is the change `change_id`, or was written on top of it."""
    if not isinstance(stored, dict) or not isinstance(change_id, str) or not change_id:
        return False
    history = stored.get("history")
    return stored.get("change_id") == change_id or (
        isinstance(history, list) and change_id in history
    )


_UNREADABLE = object()


def _reason(what: str, path: Path, error: OSError) -> str:
    """One line for a person: what failed, why, and what to do."""
    why = error.strerror or type(error).__name__
    return f"{what} the state file {path} ({why}): free space or make its folder writable"
