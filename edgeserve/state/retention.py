"""Which kept models stay on disk: the versions the state names in A and B, the previous A
(for rollback), what this worker serves, and uploads younger than MODEL_UPLOAD_GRACE_SECONDS
(pushed, not loaded yet). Every other version folder goes, and so does a staging folder left
untouched for STALE_STAGING_SECONDS (an upload or a removal a crash cut off).

`plan` is pure; `survey` reads the folder and `collect` removes what the plan says, except a
version a load holds (any worker's: ModelStore.loading), which stays as "loading". A version
folder is first renamed to a staging name (atomic), so no half-removed version is ever seen.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edgeserve.state.model_store import STAGING_PREFIX, unless_loading
from edgeserve.state.schema import RuntimeState
from edgeserve.state.shared_models import short
from edgeserve.variants import CANDIDATE, CURRENT

VERSION_FOLDER = re.compile(r"[0-9a-f]{64}")
LOADING = "loading"
"""Why a version stays that nothing else keeps: a load is reading it (and will name it)."""
STALE_STAGING_SECONDS = 3600.0
"""A staging folder is written to at every chunk, so one this quiet is no upload any more."""


@dataclass(frozen=True)
class Entry:
    folder: Path
    """A version's folder, or a staging folder."""
    age_seconds: float
    """Since it was last written: a version's kept or pushed (again), a staging folder's use."""
    size_bytes: int

    @property
    def staging(self) -> bool:
        return self.folder.name.startswith(STAGING_PREFIX)

    def describe(self) -> dict[str, object]:
        names = sorted(p.name for p in self.folder.glob("*.onnx"))
        version = None if self.staging else self.folder.name[:12]
        return {"version": version, "names": names, "bytes": self.size_bytes}


@dataclass(frozen=True)
class Plan:
    kept: dict[str, str] = field(default_factory=dict)
    """Full version -> why it stays."""
    removed: list[Entry] = field(default_factory=list)
    removed_shared: list[str] = field(default_factory=list)
    """Full versions removed from the fleet's Redis, and `blob:<sha256>` for chunks no manifest
    named (state.shared_models)."""

    def to_dict(self, *, dry_run: bool) -> dict[str, object]:
        return {
            "dry_run": dry_run,
            "kept": [{"version": version[:12], "why": why} for version, why in self.kept.items()],
            "removed": [entry.describe() for entry in self.removed],
            "removed_bytes": sum(entry.size_bytes for entry in self.removed),
            "removed_from_redis": [short(entry) for entry in self.removed_shared],
        }


def reasons_to_keep(state: RuntimeState, serving: Iterable[str]) -> dict[str, str]:
    """Full version -> why retention keeps it, from the state and what this worker serves."""
    reasons: dict[str, str] = {version: "served here" for version in serving}
    if state.previous_a is not None:
        reasons[state.previous_a.version] = "previous A"
    for slot in (CANDIDATE, CURRENT):  # A last: its reason wins when A and B share a version
        if slot in state.models:
            reasons[state.models[slot].version] = slot
    return reasons


def plan(entries: Iterable[Entry], reasons: dict[str, str], grace_seconds: float) -> Plan:
    kept: dict[str, str] = {}
    removed: list[Entry] = []
    for entry in entries:
        if entry.staging:
            why = "staging" if entry.age_seconds < STALE_STAGING_SECONDS else None
        else:
            why = reasons.get(entry.folder.name)
            if why is None and entry.age_seconds < grace_seconds:
                why = "young upload"
        if why is None:
            removed.append(entry)
        elif not entry.staging:
            kept[entry.folder.name] = why
    return Plan(kept, removed)


def survey(folder: Path, now: float | None = None) -> list[Entry]:
    """The store's version and staging folders, with their age and size."""
    now = time.time() if now is None else now
    entries = []
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not (VERSION_FOLDER.fullmatch(child.name) or child.name.startswith(STAGING_PREFIX)):
            continue  # not the store's (lost+found on a volume, say): never removed
        try:
            files = [p.stat() for p in child.iterdir()] if child.is_dir() else None
            written = max([child.stat().st_mtime, *(f.st_mtime for f in files or [])])
        except FileNotFoundError:  # removed meanwhile, by another worker's collection
            continue
        if files is not None:
            entries.append(Entry(child, now - written, sum(f.st_size for f in files)))
    return entries


def collect(folder: Path, reasons: dict[str, str], grace_seconds: float, *, dry_run: bool) -> Plan:
    """Plan, and unless `dry_run` remove what the plan lets go and no load holds."""
    decided = plan(survey(folder), reasons, grace_seconds)
    kept, removed, renamed = dict(decided.kept), [], []
    for entry in decided.removed:
        with unless_loading(entry.folder) as free:
            if not free:
                kept[entry.folder.name] = LOADING
                continue
            removed.append(entry)
            if not dry_run:
                renamed.append(_rename_away(entry.folder))
    for doomed in renamed:  # deleted unlocked: a load waiting for the lock need not wait this
        if doomed is not None:
            shutil.rmtree(doomed, ignore_errors=True)
    return Plan(kept, removed)


def _rename_away(folder: Path) -> Path | None:
    """Move a folder out of the store's names (atomic); None when it was gone already."""
    doomed = folder.with_name(f"{STAGING_PREFIX}gc-{uuid.uuid4().hex}")
    try:
        folder.rename(doomed)
    except FileNotFoundError:  # removed meanwhile, by another worker's collection
        return None
    return doomed
