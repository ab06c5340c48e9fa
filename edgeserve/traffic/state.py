"""The runtime state (weights, toggles, models per slot, generation) shared by every worker.

Sanic workers are separate processes, so the state lives in one JSON file that each worker
polls; writes take an exclusive lock and replace the file atomically (temp, fsync, rename).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

RUNTIME_FIELDS = ("ab_weight_a", "ab_weight_b", "shadow_enabled", "canary_enabled", "sticky_cookie")


@dataclass(frozen=True)
class SlotModel:
    path: str
    version: str


@dataclass(frozen=True)
class RuntimeState:
    ab_weight_a: float
    ab_weight_b: float
    shadow_enabled: bool
    canary_enabled: bool
    sticky_cookie: bool
    models: dict[str, SlotModel] = field(default_factory=dict)
    generation: int = 1
    last_rollback: str | None = None
    """Why the canary guard last set B's weight to 0, if it ever did."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeState:
        models = {slot: SlotModel(**spec) for slot, spec in data["models"].items()}
        state = cls(
            ab_weight_a=float(data["ab_weight_a"]),
            ab_weight_b=float(data["ab_weight_b"]),
            shadow_enabled=bool(data["shadow_enabled"]),
            canary_enabled=bool(data["canary_enabled"]),
            sticky_cookie=bool(data["sticky_cookie"]),
            models=models,
            generation=int(data["generation"]),
            last_rollback=data.get("last_rollback"),
        )
        if "A" not in models or state.ab_weight_a < 0 or state.ab_weight_b < 0:
            raise ValueError("state has no model A or a negative weight")
        return state


class StateUpdateError(ValueError):
    """A requested change is not allowed; nothing was changed."""


def validate_update(update: Any) -> dict[str, Any]:
    """Check a partial update of the five runtime fields; raise StateUpdateError."""
    if not isinstance(update, dict):
        raise StateUpdateError("the body must be a JSON object of the fields to change")
    unknown = sorted(set(update) - set(RUNTIME_FIELDS))
    if unknown:
        raise StateUpdateError(
            f"unknown field(s) {', '.join(unknown)}: allowed are {', '.join(RUNTIME_FIELDS)}"
        )
    if not update:
        raise StateUpdateError(f"nothing to change: give one of {', '.join(RUNTIME_FIELDS)}")
    for name, value in update.items():
        if name.startswith("ab_weight"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise StateUpdateError(f"{name} must be a number >= 0, got {value!r}")
            if not 0 <= value < float("inf"):
                raise StateUpdateError(f"{name} must be a number >= 0, got {value!r}")
        elif not isinstance(value, bool):
            raise StateUpdateError(f"{name} must be true or false, got {value!r}")
    return update


def apply_update(state: RuntimeState, update: dict[str, Any]) -> RuntimeState:
    new_state = replace(state, **validate_update(update))
    if new_state.ab_weight_a == 0 and new_state.ab_weight_b == 0:
        raise StateUpdateError("ab_weight_a and ab_weight_b cannot both be 0")
    if new_state.ab_weight_b > 0 and "B" not in new_state.models:
        raise StateUpdateError("ab_weight_b must stay 0 while no model B is loaded")
    return new_state


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class StateStore:
    """Reads and writes the shared state file; every write bumps `generation`."""

    def __init__(self, path: Path):
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    @contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> RuntimeState:
        return RuntimeState.from_dict(json.loads(self.path.read_text(encoding="utf-8")))

    def signature(self) -> tuple[int, int]:
        """Changes whenever the file is replaced; cheap enough to poll."""
        stat = self.path.stat()
        return stat.st_ino, stat.st_mtime_ns

    def write(self, state: RuntimeState) -> None:
        write_atomically(self.path, state.to_dict())

    def update(self, change: Callable[[RuntimeState], RuntimeState]) -> RuntimeState:
        with self.locked():
            current = self.read()
            new_state = replace(change(current), generation=current.generation + 1)
            self.write(new_state)
            return new_state


def restore_or_initialise(store: StateStore, initial: RuntimeState, log: Any) -> RuntimeState:
    """Start from the saved state when it is readable; move a corrupt file aside."""
    with store.locked():
        if store.path.exists():
            try:
                restored = store.read()
            except (ValueError, KeyError, TypeError, OSError) as error:
                aside = store.path.with_name(f"{store.path.name}.corrupt-{int(time.time())}")
                os.replace(store.path, aside)
                log.error(
                    "state_file_corrupt",
                    path=str(store.path),
                    moved_to=str(aside),
                    error=str(error).splitlines()[0][:200],
                )
            else:
                missing = [m.path for m in restored.models.values() if not Path(m.path).is_file()]
                if not missing:
                    log.info("state_restored", path=str(store.path), generation=restored.generation)
                    return restored
                log.error("state_models_missing", path=str(store.path), missing=missing)
        store.write(initial)
        return initial
