"""The runtime state: validated updates, atomic writes, restore and corrupt files."""

from __future__ import annotations

import json

import pytest
import structlog

from edgeserve.traffic.state import (
    RuntimeState,
    SlotModel,
    StateStore,
    StateUpdateError,
    apply_update,
    restore_or_initialise,
)


@pytest.fixture
def state(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    return RuntimeState(
        1.0,
        0.0,
        False,
        False,
        True,
        {"A": SlotModel(str(model), "v1"), "B": SlotModel(str(model), "v1")},
    )


@pytest.mark.parametrize(
    "update",
    [
        {"weight": 1},
        {"ab_weight_b": -0.1},
        {"ab_weight_a": "1"},
        {"ab_weight_a": True},
        {"shadow_enabled": "yes"},
        {"ab_weight_a": 0, "ab_weight_b": 0},
        {},
        [],
    ],
)
def test_rejected_update_raises_and_changes_nothing(state, update):
    with pytest.raises(StateUpdateError):
        apply_update(state, update)


def test_partial_update_changes_only_the_given_fields(state):
    new = apply_update(state, {"ab_weight_b": 0.25, "shadow_enabled": True})
    assert (new.ab_weight_a, new.ab_weight_b, new.shadow_enabled, new.sticky_cookie) == (
        1.0,
        0.25,
        True,
        True,
    )


def test_every_update_bumps_the_generation(tmp_path, state):
    store = StateStore(tmp_path / "state.json")
    store.write(state)
    first = store.update(lambda s: apply_update(s, {"ab_weight_b": 0.5}))
    second = store.update(lambda s: apply_update(s, {"shadow_enabled": True}))
    assert (first.generation, second.generation) == (2, 3)
    assert store.read() == second


def test_saved_state_is_restored(tmp_path, state):
    store = StateStore(tmp_path / "state.json")
    saved = apply_update(state, {"ab_weight_b": 0.5})
    store.write(saved)
    assert restore_or_initialise(store, state, structlog.get_logger()) == saved


def test_corrupt_state_file_is_moved_aside_and_env_values_used(tmp_path, state):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    restored = restore_or_initialise(StateStore(path), state, structlog.get_logger())
    assert restored == state
    assert json.loads(path.read_text())["generation"] == state.generation
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 1
