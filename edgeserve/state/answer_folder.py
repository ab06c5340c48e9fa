"""B's shadow answers in a folder every worker on this host reads (no STATE_URL).

One file per feedback nonce, written atomically (temporary file, then rename). Taking one
renames it to a name only this taker knows before reading it, so of two workers taking the same
nonce one gets it and a pair counts once. Bounded: every `PRUNE_EVERY` writes, files older than
the token lifetime go, then the oldest beyond `capacity`. All disk work runs on one thread of
its own, never the event loop; while `MAX_PENDING` calls wait for it, more are refused at once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

FOLDER_NAME = "shadow-answers"
PRUNE_EVERY = 256
MAX_PENDING = 64
T = TypeVar("T")


class StoreBusy(OSError):
    """The folder's thread is behind (a slow or hung disk): the call is refused, not queued."""


def folder_beside(state_file: Path) -> Path:
    """`<state folder>/shadow-answers`: shared by the workers of one instance."""
    return Path(state_file).parent / FOLDER_NAME


class AnswerFolder:
    def __init__(self, folder: Path, capacity: int, ttl_seconds: int):
        self.folder = folder
        self.capacity = capacity
        self.ttl_seconds = ttl_seconds
        self.writes = 0
        self.pending = 0
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="shadow-answers")

    async def put(self, nonce: str, value: str) -> None:
        await self._off_loop(self._put, nonce, value)

    async def take(self, nonce: str) -> str | None:
        return await self._off_loop(self._take, nonce)

    async def _off_loop(self, work: Callable[..., T], *args: str) -> T:
        if self.pending >= MAX_PENDING:
            raise StoreBusy(f"{self.pending} calls already wait for {self.folder}")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.thread, work, *args)
        finally:
            self.pending -= 1

    def _put(self, nonce: str, value: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{nonce}.{secrets.token_hex(4)}.tmp"
        temporary.write_text(value, encoding="utf-8")
        os.replace(temporary, self.folder / nonce)
        self.writes += 1
        if self.writes % PRUNE_EVERY == 0:
            self._prune()

    def _take(self, nonce: str) -> str | None:
        mine = self.folder / f".{nonce}.{secrets.token_hex(4)}.taken"
        try:
            os.rename(self.folder / nonce, mine)
        except FileNotFoundError:
            return None
        try:
            return mine.read_text(encoding="utf-8")
        finally:
            mine.unlink(missing_ok=True)

    def _prune(self) -> None:
        expired = time.time() - self.ttl_seconds
        kept: list[tuple[float, str]] = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                try:
                    modified = entry.stat().st_mtime
                except FileNotFoundError:
                    continue  # taken meanwhile
                if modified < expired:
                    Path(entry.path).unlink(missing_ok=True)
                elif not entry.name.startswith("."):
                    kept.append((modified, entry.path))
        kept.sort()
        for _, path in kept[: max(0, len(kept) - self.capacity)]:
            Path(path).unlink(missing_ok=True)

    async def close(self) -> None:
        self.thread.shutdown(wait=False, cancel_futures=True)
