"""The rollout state document, parsed strictly from decoded JSON wherever it comes from.

The same rules hold for a file on disk, a Redis value and an admin API update, so a value that
would crash a worker or silently mean something else ("false" as true, NaN weights) never gets in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from copy import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edgeserve.variants import CANDIDATE, CURRENT, VARIANTS, Variant

RUNTIME_FIELDS = ("ab_weight_a", "ab_weight_b", "shadow_enabled", "canary_enabled", "sticky_cookie")
MAX_WEIGHT = 1e6
MAX_GENERATION = 2**53  # exclusive: JSON numbers above it lose integer precision in other clients
MAX_REASON_CHARS = 500
MAX_PATH_CHARS = 4096
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
CHANGE_ID = re.compile(r"^[0-9a-f]{16,64}$")
MAX_HISTORY = 64
"""Change ids a document keeps of the generations before it: how far back a store that lost
changes (a Redis restored from an older snapshot) is still recognised as behind."""
UPDATE_FIELDS = (*RUNTIME_FIELDS, "last_rollback", "quarantine")
DOCUMENT_FIELDS = (
    *RUNTIME_FIELDS,
    *("models", "generation", "last_rollback", "quarantine", "change_id", "history"),
    "previous_a",
)


class InvalidState(ValueError):
    """A state document or a change to it breaks a rule; the message is one line saying which."""


@dataclass(frozen=True)
class SlotModel:
    """The model a slot serves: a content-addressed file and the sha256 of its bytes."""

    path: str
    version: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "version": self.version}

    @property
    def content_addressed(self) -> bool:
        """Named by its bytes (`.../<sha256>/<file>`, a kept copy), not an original file that
        someone can overwrite later: only such a model may be written into the state."""
        return Path(self.path).parent.name == self.version


@dataclass(frozen=True)
class Quarantine:
    """B's version the canary guard judged bad: it gets no user traffic until replaced."""

    version: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"version": self.version, "reason": self.reason}


@dataclass(frozen=True)
class RuntimeState:
    """Weights, toggles, the model in each slot and the generation every worker follows."""

    ab_weight_a: float
    ab_weight_b: float
    shadow_enabled: bool
    canary_enabled: bool
    sticky_cookie: bool
    models: Mapping[str, SlotModel] = field(default_factory=dict)
    generation: int = 1
    last_rollback: str | None = None
    """Why the canary guard last set B's weight to 0, if it ever did."""
    quarantine: Quarantine | None = None
    change_id: str | None = None
    """Names the change that wrote this generation, so two stores holding the same generation
    with different contents are told apart. None in a document written by hand or by an older
    release."""
    history: tuple[str, ...] = ()
    """The change ids of the generations before this one, oldest first, at most MAX_HISTORY."""
    previous_a: SlotModel | None = None
    """The model A served before the last promote: what `edgeserve admin rollback` restores."""

    def __post_init__(self) -> None:
        # Frozen all the way down: a state handed to a worker cannot be changed under it.
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "history", tuple(self.history))
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in RUNTIME_FIELDS},
            "models": {slot: model.to_dict() for slot, model in sorted(self.models.items())},
            "generation": self.generation,
            "last_rollback": self.last_rollback,
            "quarantine": self.quarantine.to_dict() if self.quarantine else None,
            "change_id": self.change_id,
            "history": list(self.history),
            "previous_a": self.previous_a.to_dict() if self.previous_a else None,
        }

    @property
    def weights(self) -> dict[Variant, float]:
        return {CURRENT: self.ab_weight_a, CANDIDATE: self.ab_weight_b}

    def next(self, **changes: Any) -> RuntimeState:
        """A copy with `changes`, validated; the generation is the writer's business."""
        return replace(self, **changes)

    def written_after(self, base: RuntimeState, change_id: str) -> RuntimeState:
        """This state as the change `change_id` made to `base`: the next generation, with
        `base` in its history. The rest was checked when this state was built."""
        generation = base.generation + 1
        _check_generation(generation)
        history = (*base.history, base.change_id) if base.change_id else base.history
        _check_change_id("change_id", change_id)
        renumbered = copy(self)
        object.__setattr__(renumbered, "generation", generation)
        object.__setattr__(renumbered, "change_id", change_id)
        object.__setattr__(renumbered, "history", history[-MAX_HISTORY:])
        return renumbered

    def follows(self, earlier: RuntimeState) -> bool:
        """`earlier` is a generation this state was written on top of (as far as the history
        reaches); without change ids, only the generations can say."""
        if earlier.change_id is None:
            return earlier.generation < self.generation
        return earlier.change_id in self.history

    def same_as(self, other: RuntimeState) -> bool:
        """The same document: the same generation written by the same change."""
        return (self.generation, self.change_id) == (other.generation, other.change_id)


def parse_state(data: Any) -> RuntimeState:
    """Decoded JSON -> RuntimeState; InvalidState names the first rule it breaks."""
    if not isinstance(data, dict):
        raise InvalidState(f"the state must be a JSON object, got {_kind(data)}")
    unknown = sorted(set(data) - set(DOCUMENT_FIELDS))
    if unknown:
        raise InvalidState(f"unknown field(s) {_names(unknown)} in the state")
    missing = [name for name in (*RUNTIME_FIELDS, "models", "generation") if name not in data]
    if missing:
        raise InvalidState(f"the state has no {', '.join(missing)}")
    for name in RUNTIME_FIELDS:
        _check_field(name, data[name])
    generation = data["generation"]
    if isinstance(generation, bool) or not isinstance(generation, int):
        raise InvalidState(f"generation must be an integer in [0, 2^53), got {_shown(generation)}")
    return RuntimeState(
        **{name: data[name] for name in RUNTIME_FIELDS},
        models=_parse_models(data["models"]),
        generation=generation,
        last_rollback=data.get("last_rollback"),
        quarantine=_parse_quarantine(data.get("quarantine")),
        change_id=data.get("change_id"),
        history=_parse_history(data.get("history", [])),
        previous_a=_parse_previous_a(data.get("previous_a")),
    )


def validate_update(update: Any) -> dict[str, Any]:
    """Check an admin API partial update: the five runtime fields, the rollback reason an
    operator's tool records, and clearing the quarantine (only the guard sets one)."""
    if not isinstance(update, dict):
        raise InvalidState("the body must be a JSON object of the fields to change")
    unknown = sorted(set(update) - set(UPDATE_FIELDS))
    if unknown:
        raise InvalidState(
            f"unknown field(s) {_names(unknown)}: allowed are {', '.join(UPDATE_FIELDS)}"
        )
    if not update:
        raise InvalidState(f"nothing to change: give one of {', '.join(UPDATE_FIELDS)}")
    for name, value in update.items():
        if name == "last_rollback":
            _check_text(name, value)
        elif name == "quarantine":
            if value is not None:
                raise InvalidState(
                    "quarantine can only be cleared (null): the canary guard sets it"
                )
        else:
            _check_field(name, value)
    return update


def _check_field(name: str, value: Any) -> None:
    if name.startswith("ab_weight"):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value <= MAX_WEIGHT  # false for NaN too; infinity is above the cap
        ):
            raise InvalidState(f"{name} must be a number in [0, 1e6], got {_shown(value)}")
    elif not isinstance(value, bool):
        raise InvalidState(f"{name} must be true or false, got {_shown(value)}")


def _check(state: RuntimeState) -> None:
    """The rules that hold for any state, however it was built."""
    for name in RUNTIME_FIELDS:
        _check_field(name, getattr(state, name))
    if state.ab_weight_a + state.ab_weight_b <= 0:
        raise InvalidState("ab_weight_a and ab_weight_b cannot both be 0")
    _check_generation(state.generation)
    if CURRENT not in state.models:
        raise InvalidState("the state names no model for slot A")
    if state.ab_weight_b > 0 and CANDIDATE not in state.models:
        raise InvalidState("ab_weight_b must stay 0 while no model B is loaded")
    if state.last_rollback is not None:
        _check_text("last_rollback", state.last_rollback)
    if state.change_id is not None:
        _check_change_id("change_id", state.change_id)
    quarantine = state.quarantine
    if quarantine is not None:
        b = state.models.get(CANDIDATE)
        if b is None or b.version != quarantine.version:
            raise InvalidState(
                f"quarantine names version {quarantine.version[:12]}, "
                f"but slot B holds {b.version[:12] if b else 'no model'}"
            )


def _check_generation(generation: Any) -> None:
    if isinstance(generation, bool) or not isinstance(generation, int):
        raise InvalidState(f"generation must be an integer, got {_shown(generation)}")
    if not 0 <= generation < MAX_GENERATION:
        raise InvalidState(f"generation must be in [0, 2^53), got {generation}")


def _check_change_id(name: str, value: Any) -> None:
    if not isinstance(value, str) or not CHANGE_ID.match(value):
        raise InvalidState(f"{name} must be 16 to 64 hex digits, got {_shown(value)}")


def _parse_history(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_HISTORY:
        got = f"{len(value)} of them" if isinstance(value, list) else _kind(value)
        raise InvalidState(
            f"history must be an array of at most {MAX_HISTORY} change ids, got {got}"
        )
    for change_id in value:
        _check_change_id("each history entry", change_id)
    return tuple(value)


def _parse_models(value: Any) -> dict[str, SlotModel]:
    if not isinstance(value, dict):
        raise InvalidState(f'models must be an object like {{"A": {{...}}}}, got {_kind(value)}')
    unknown = sorted(set(value) - set(VARIANTS))
    if unknown:
        raise InvalidState(f"models has unknown slot(s) {_names(unknown)}: A or B")
    models = {}
    for slot, spec in value.items():
        if not isinstance(spec, dict) or set(spec) != {"path", "version"}:
            raise InvalidState(f'models.{slot} must be {{"path": ..., "version": ...}}')
        path, version = spec["path"], spec["version"]
        if not isinstance(path, str) or not 0 < len(path) <= MAX_PATH_CHARS:
            raise InvalidState(f"models.{slot}.path must be a file path, got {_shown(path)}")
        if not isinstance(version, str) or not SHA256_HEX.match(version):
            raise InvalidState(
                f"models.{slot}.version must be the model's sha256 (64 hex digits), "
                f"got {_shown(version)}"
            )
        models[slot] = SlotModel(path, version)
    return models


def _parse_previous_a(value: Any) -> SlotModel | None:
    return None if value is None else _parse_models({CURRENT: value})[CURRENT]


def _parse_quarantine(value: Any) -> Quarantine | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"version", "reason"}:
        raise InvalidState('quarantine must be null or {"version": ..., "reason": ...}')
    if not isinstance(value["version"], str) or not SHA256_HEX.match(value["version"]):
        raise InvalidState(f"quarantine.version must be a sha256, got {_shown(value['version'])}")
    _check_text("quarantine.reason", value["reason"])
    return Quarantine(value["version"], value["reason"])


def _check_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or len(value) > MAX_REASON_CHARS:
        got = f"{len(value)} characters" if isinstance(value, str) else _kind(value)
        raise InvalidState(
            f"{name} must be text of at most {MAX_REASON_CHARS} characters, got {got}"
        )


JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if value is None:
        return "null"
    return JSON_KINDS.get(type(value), "a number")


def _names(keys: list[str]) -> str:
    """Keys a client or a file chose, quoted so that none can break the one-line message."""
    return ", ".join(_shown(key) for key in keys[:5]) + (", ..." if len(keys) > 5 else "")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
