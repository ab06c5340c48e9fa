"""The state document's rules: every way a stored or requested state can be wrong is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgeserve.state.schema import (
    InvalidState,
    RuntimeState,
    SlotModel,
    parse_state,
    validate_update,
)

SHA_A = "a" * 64
SHA_B = "b" * 64


def document(**changes: Any) -> dict[str, Any]:
    base = {
        "ab_weight_a": 1.0,
        "ab_weight_b": 0.0,
        "shadow_enabled": False,
        "canary_enabled": False,
        "sticky_cookie": True,
        "models": {
            "A": {"path": "/m/a/vA.onnx", "version": SHA_A},
            "B": {"path": "/m/b/vB.onnx", "version": SHA_B},
        },
        "generation": 7,
        "last_rollback": None,
        "quarantine": None,
    }
    base.update(changes)
    return base


def refused(data: Any) -> str:
    with pytest.raises(InvalidState) as caught:
        parse_state(data)
    message = str(caught.value)
    assert "\n" not in message and message, message
    return message


def test_a_valid_document_round_trips():
    state = parse_state(document(quarantine={"version": SHA_B, "reason": "slow"}))
    assert parse_state(json.loads(json.dumps(state.to_dict()))) == state


def test_older_documents_without_last_rollback_or_quarantine_are_valid():
    data = document()
    del data["last_rollback"], data["quarantine"]
    assert parse_state(data).quarantine is None


@pytest.mark.parametrize("models", [[], None, "A", 3, {"A": []}, {"A": {"path": "/m"}}])
def test_models_must_be_a_mapping_of_slot_to_path_and_version(models):
    assert "models" in refused(document(models=models))


def test_slot_a_is_required():
    assert "slot A" in refused(document(models={"B": {"path": "/m/b", "version": SHA_B}}))


def test_only_slots_a_and_b_exist():
    models = {**document()["models"], "C": {"path": "/m/c", "version": SHA_A}}
    assert "C" in refused(document(models=models))


@pytest.mark.parametrize("version", ["1ba345dc2317", "A" * 64, "g" * 64, 5, None])
def test_model_version_is_a_full_lowercase_sha256(version):
    assert "sha256" in refused(document(models={"A": {"path": "/m/a", "version": version}}))


@pytest.mark.parametrize("path", ["", 5, None, "x" * 5000])
def test_model_path_is_a_non_empty_string(path):
    assert "path" in refused(document(models={"A": {"path": path, "version": SHA_A}}))


@pytest.mark.parametrize(
    "weight", [float("nan"), float("inf"), -float("inf"), -0.1, 1e6 + 1, 1e308, "1", True, None]
)
def test_weights_are_finite_numbers_in_0_to_1e6(weight):
    assert "ab_weight_b" in refused(document(ab_weight_b=weight))


def test_weights_from_json_nan_and_infinity_literals_are_refused():
    text = json.dumps(document()).replace('"ab_weight_b": 0.0', '"ab_weight_b": NaN')
    refused(json.loads(text))
    refused(json.loads(text.replace("NaN", "Infinity")))


def test_both_weights_zero_is_refused():
    assert "both be 0" in refused(document(ab_weight_a=0, ab_weight_b=0))


def test_weight_of_b_needs_a_model_b():
    models = {"A": document()["models"]["A"]}
    assert "no model B" in refused(document(models=models, ab_weight_b=0.5))


@pytest.mark.parametrize("field", ["shadow_enabled", "canary_enabled", "sticky_cookie"])
@pytest.mark.parametrize("value", ["false", "true", 0, 1, None])
def test_toggles_are_json_booleans(field, value):
    assert field in refused(document(**{field: value}))


@pytest.mark.parametrize("generation", [1e30, 3.0, "7", True, -1, 2**53, None])
def test_generation_is_an_integer_in_0_to_2_pow_53(generation):
    assert "generation" in refused(document(generation=generation))


def test_generation_just_below_2_pow_53_is_valid():
    assert parse_state(document(generation=2**53 - 1)).generation == 2**53 - 1


@pytest.mark.parametrize("value", [5, "x" * 501, ["x"]])
def test_last_rollback_is_short_text_or_null(value):
    assert "last_rollback" in refused(document(last_rollback=value))


@pytest.mark.parametrize(
    "quarantine",
    [
        "B",
        {"version": SHA_B},
        {"version": SHA_B, "reason": 5},
        {"version": "1ba345dc2317", "reason": "slow"},
        {"version": SHA_A, "reason": "names a version B does not hold"},
    ],
)
def test_quarantine_is_null_or_b_version_and_reason(quarantine):
    assert "quarantine" in refused(document(quarantine=quarantine))


@pytest.mark.parametrize("data", [[], "state", None, 3])
def test_the_document_is_a_json_object(data):
    assert "object" in refused(data)


def test_unknown_and_missing_fields_are_refused():
    assert "weight" in refused(document(weight=1))
    data = document()
    del data["sticky_cookie"]
    assert "sticky_cookie" in refused(data)


@pytest.fixture
def state() -> RuntimeState:
    return parse_state(document())


@pytest.mark.parametrize(
    "update",
    [
        {"weight": 1},
        {"ab_weight_b": -0.1},
        {"ab_weight_a": "1"},
        {"ab_weight_a": True},
        {"shadow_enabled": "yes"},
        {"ab_weight_a": 0, "ab_weight_b": 0},
        {"ab_weight_a": 1e308, "ab_weight_b": 1e308},
        {"ab_weight_b": float("nan")},
        {"ab_weight_b": float("inf")},
        {},
        [],
    ],
)
def test_rejected_update_raises_and_changes_nothing(state, update):
    with pytest.raises(InvalidState):
        state.next(**validate_update(update))


def test_partial_update_changes_only_the_given_fields(state):
    new = state.next(**validate_update({"ab_weight_b": 0.25, "shadow_enabled": True}))
    assert (new.ab_weight_a, new.ab_weight_b, new.shadow_enabled, new.sticky_cookie) == (
        1.0,
        0.25,
        True,
        True,
    )
    assert new.generation == state.generation  # the writer bumps it, not the change


def test_an_update_is_checked_without_a_state():
    assert validate_update({"canary_enabled": True}) == {"canary_enabled": True}


def test_a_state_cannot_be_changed_in_place(state):
    with pytest.raises(TypeError):
        state.models["A"] = SlotModel("/x", SHA_A)  # type: ignore[index]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


slot_specs = st.fixed_dictionaries(
    {"path": json_values | st.just("/m/vA.onnx"), "version": json_values | st.just(SHA_A)}
)
models = st.dictionaries(st.sampled_from(["A", "B", "C"]), json_values | slot_specs, max_size=3)


def mutated_documents() -> st.SearchStrategy[dict[str, Any]]:
    """A valid document with some fields, or its models, replaced by arbitrary JSON."""
    fields = st.sampled_from([*document()])
    changed = st.dictionaries(fields, json_values, max_size=3)
    return st.one_of(
        changed.map(lambda d: document(**d)),
        models.map(lambda m: document(models=m)),
    )


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, mutated_documents()))
@example({"\n": None})  # found by this test: a key with a newline broke the one-line message
def test_any_json_gives_a_state_or_invalid_state_and_nothing_else(data):
    try:
        state = parse_state(data)
    except InvalidState as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert parse_state(state.to_dict()) == state


def test_a_change_id_and_its_history_round_trip_and_are_checked():
    state = parse_state(document(change_id="ab" * 8, history=["cd" * 8]))
    assert (state.change_id, state.history) == ("ab" * 8, ("cd" * 8,))
    assert "change_id" in refused(document(change_id="not hex"))
    assert "history" in refused(document(history="cd" * 8))
    assert "history" in refused(document(history=["cd" * 8] * 65))


def test_a_change_is_written_after_its_base_with_the_base_in_its_history(state):
    first = state.next(ab_weight_b=0.5).written_after(state, "1" * 16)
    second = first.next(ab_weight_b=0.25).written_after(first, "2" * 16)
    assert (second.generation, second.change_id, second.history) == (9, "2" * 16, ("1" * 16,))
    assert second.follows(first) and not first.follows(second) and not second.follows(second)
    assert second.same_as(second) and not second.same_as(first)


def test_the_history_keeps_the_last_64_changes():
    state = parse_state(document(change_id="0" * 16))
    for n in range(1, 70):
        state = state.written_after(state, f"{n:016x}")
    assert len(state.history) == 64 and state.history[-1] == f"{68:016x}"


def test_without_change_ids_only_the_generation_says_which_came_first(state):
    older = parse_state(document(generation=3))
    assert state.follows(older) and not older.follows(state)
