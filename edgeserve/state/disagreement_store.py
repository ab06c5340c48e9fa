"""Captured disagreements on disk: the last N inputs where A and B disagreed, within a byte cap.

Each capture is two files named by its id (`<time>-<random>`, so names sort oldest first): the
image bytes as the client sent them (`<id>.png` or `<id>.jpg`), then `<id>.json` with both
answers, both versions, the trace id and the time. Each file is written to a temp name and
renamed, the JSON last, so a capture exists once its JSON does: a reader sees it whole or not
at all. A capture is removed JSON first, for the same reason.

Writers of every worker (and every restart) share the folder: each keeps its capture under an
exclusive flock on `<folder>/.lock`, evicting the oldest first so the new one fits, so the count
and byte bounds hold on disk at every moment, whatever the number of writers. Readers take no
lock. The files are not fsynced: a power cut may lose the newest captures, and a torn one is
skipped when read.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeserve.inference.model import Prediction
from edgeserve.inference.preprocess import image_kind
from edgeserve.settings import Settings

FOLDER_NAME = "disagreements"
CAPTURE_ID = re.compile(r"^\d{8}T\d{6}-\d{6}-[0-9a-f]{8}$")
"""UTC date and time, microseconds, 8 random hex digits: unique, and sorted oldest first."""
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
EXTENSIONS = {"PNG": "png", "JPEG": "jpg"}
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Answer:
    """One side of a disagreement: the version that answered and its ranked classes."""

    version: str
    predictions: list[Prediction]

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "predictions": [p.to_dict() for p in self.predictions]}


@dataclass(frozen=True)
class Disagreement:
    """An input A and B answered differently, as shadow saw it."""

    image: bytes
    """The uploaded file's bytes, as sent (PNG or JPEG)."""
    a: Answer
    b: Answer
    trace_id: str
    at: float
    """Unix time of the comparison."""


def folder_beside(state_file: Path) -> Path:
    """`<state folder>/disagreements`: beside the state and the kept models."""
    return Path(state_file).parent / FOLDER_NAME


def store_for(settings: Settings, state_file: Path) -> DisagreementStore:
    """CAPTURE_DISAGREEMENTS_DIR, else the folder beside the state file."""
    return DisagreementStore(
        settings.capture_disagreements_dir or folder_beside(state_file),
        settings.capture_disagreements,
        settings.capture_disagreements_max_bytes,
    )


def new_id(at: float) -> str:
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y%m%dT%H%M%S-%f")
    return f"{stamp}-{secrets.token_hex(4)}"


class DisagreementStore:
    def __init__(self, folder: Path, max_count: int, max_bytes: int):
        self.folder = Path(folder)
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._sizes: dict[str, int] = {}
        """Bytes of each capture seen on disk; a capture never changes once written."""

    # --- writing (one thread per process; processes meet at the flock) ----------------------

    def keep(self, disagreement: Disagreement) -> str | None:
        """Write `disagreement`, evicting the oldest captures so the bounds hold; answers its id,
        or None when it alone is over the byte cap. OSError when the folder cannot take it."""
        capture_id = new_id(disagreement.at)
        extension = EXTENSIONS.get(image_kind(disagreement.image) or "", "bin")
        record = _record(capture_id, disagreement, extension)
        document = json.dumps(record, allow_nan=False).encode()
        size = len(document) + len(disagreement.image)
        if size > self.max_bytes or self.max_count < 1:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._make_room(size)
            self._write(self.folder / f"{capture_id}.{extension}", disagreement.image)
            self._write(self.folder / f"{capture_id}.json", document)  # last: now it exists
        self._sizes[capture_id] = size
        return capture_id

    def _make_room(self, incoming: int) -> None:
        """Under the lock: drop leftovers of crashed writers, then the oldest captures until
        one more of `incoming` bytes fits in both bounds."""
        kept = self._captures_on_disk()
        total = sum(kept.values())
        for capture_id in sorted(kept):
            if len(kept) < self.max_count and total + incoming <= self.max_bytes:
                break
            total -= kept.pop(capture_id)
            self._remove(capture_id)

    def _captures_on_disk(self) -> dict[str, int]:
        """id -> bytes of every complete capture; orphans (an image without its JSON, a temp
        file) are removed: under the lock no writer is between its two renames."""
        names = os.listdir(self.folder)
        committed = _committed(names)
        for name in names:
            capture_id = _id(name)
            if name.startswith(TEMP_PREFIX) or (capture_id and capture_id not in committed):
                (self.folder / name).unlink(missing_ok=True)
        self._sizes = {i: self._sizes.get(i) or self._size_on_disk(i) for i in committed}
        return dict(self._sizes)

    def _size_on_disk(self, capture_id: str) -> int:
        return sum(
            path.stat().st_size
            for path in self.folder.glob(f"{capture_id}.*")
            if not path.name.startswith(TEMP_PREFIX)
        )

    def _remove(self, capture_id: str) -> None:
        (self.folder / f"{capture_id}.json").unlink(missing_ok=True)  # first: it is gone now
        for path in self.folder.glob(f"{capture_id}.*"):
            path.unlink(missing_ok=True)
        self._sizes.pop(capture_id, None)

    def _write(self, target: Path, data: bytes) -> None:
        temp = target.with_name(f"{TEMP_PREFIX}{target.name}")
        try:
            temp.write_bytes(data)
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- reading (no lock: a capture is whole once its JSON exists) --------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every capture's record, newest first; none when the folder does not exist."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        found = (self.record(i) for i in sorted(_committed(names), reverse=True))
        return [record for record in found if record is not None]

    def record(self, capture_id: str) -> dict[str, Any] | None:
        """One capture's record; None for an unknown (or evicted, or torn) one."""
        if not CAPTURE_ID.match(capture_id):
            return None
        try:
            record = json.loads((self.folder / f"{capture_id}.json").read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def read(self, capture_id: str) -> tuple[dict[str, Any], bytes] | None:
        """One capture's record and image bytes; None for an unknown one."""
        record = self.record(capture_id)
        if record is None:
            return None
        name = str(record.get("image", {}).get("file", ""))
        if name.split(".", 1)[0] != capture_id or "/" in name:
            return None  # a record that names another file is not one this store wrote
        try:
            return record, (self.folder / name).read_bytes()
        except FileNotFoundError:
            return None  # evicted between the two reads


def _committed(names: list[str]) -> set[str]:
    """The captures whose record is among the folder's `names`: the complete ones."""
    return {i for name in names if name.endswith(".json") and (i := _id(name)) is not None}


def _id(name: str) -> str | None:
    """The capture a file of the folder belongs to; None for a file that is no capture's."""
    capture_id = name.split(".", 1)[0]
    return capture_id if CAPTURE_ID.match(capture_id) else None


def _record(capture_id: str, disagreement: Disagreement, extension: str) -> dict[str, Any]:
    at = datetime.fromtimestamp(disagreement.at, UTC)
    return {
        "id": capture_id,
        "time": at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "trace_id": disagreement.trace_id,
        "a": disagreement.a.to_dict(),
        "b": disagreement.b.to_dict(),
        "image": {
            "file": f"{capture_id}.{extension}",
            "media_type": MEDIA_TYPES.get(extension, "application/octet-stream"),
            "bytes": len(disagreement.image),
        },
    }
