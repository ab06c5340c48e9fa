"""Assignment maths (docs/operations.md, traffic rules), proven without a server."""

from __future__ import annotations

import pytest

from edgeserve.traffic.routing import (
    bucket_of,
    choose_variant,
    new_client_id,
    valid_client_id,
    variant_for_bucket,
)
from edgeserve.variants import share


def weights(a: float, b: float) -> dict[str, float]:
    return {"A": a, "B": b}


def share_of_a(a: float, b: float) -> float:
    return share(weights(a, b), "A")


CLIENTS = [f"client-{n:05d}" for n in range(5000)]


def choose(weight_a: float = 1.0, weight_b: float = 1.0, **overrides):
    arguments = {
        "weights": weights(weight_a, weight_b),
        "b_loaded": True,
        "canary_enabled": False,
        "canary_header": None,
        "client_id": None,
        "random_bucket": 0.0,
    }
    return choose_variant(**{**arguments, **overrides})


def test_weights_are_normalised():
    assert share_of_a(3, 1) == 0.75
    assert share_of_a(0, 2) == 0.0
    assert share(weights(3, 1), "B") == 0.25


def test_bucket_is_stable_and_in_unit_interval():
    assert all(0 <= bucket_of(c) < 1 for c in CLIENTS)
    assert bucket_of("same-client") == bucket_of("same-client")


def test_buckets_are_uniform_enough_for_weights():
    share = sum(variant_for_bucket(bucket_of(c), weights(0.7, 0.3)) == "A" for c in CLIENTS) / len(
        CLIENTS
    )
    assert 0.67 < share < 0.73, share


def test_a_client_keeps_its_variant_while_weights_hold():
    draws = (0.0, 0.3, 0.61, 0.99)  # the per-request random draw must not move a known client
    kept = {}
    for client in CLIENTS[:200]:
        answers = {
            choose(client_id=client, weight_a=0.6, weight_b=0.4, random_bucket=r) for r in draws
        }
        assert len(answers) == 1, (client, answers)
        kept[client] = answers.pop()
    assert set(kept.values()) == {"A", "B"}, "clients must spread over both variants"


def test_raising_b_moves_only_a_clients_to_b():
    before = {c: choose(client_id=c, weight_a=0.8, weight_b=0.2) for c in CLIENTS}
    after = {c: choose(client_id=c, weight_a=0.5, weight_b=0.5) for c in CLIENTS}
    assert not [c for c in CLIENTS if before[c] == "B" and after[c] == "A"]
    assert [c for c in CLIENTS if before[c] == "A" and after[c] == "B"]


@pytest.mark.parametrize(("header", "variant"), [("always", "B"), ("never", "A"), ("ALWAYS", "B")])
def test_canary_header_forces_a_variant_when_enabled(header, variant):
    assert (
        choose(
            canary_enabled=True,
            canary_header=header,
            weight_a=0.5,
            weight_b=0.5,
            random_bucket=0.99 if variant == "A" else 0.0,
        )
        == variant
    )


def test_canary_header_beats_the_sticky_cookie():
    b_client = next(c for c in CLIENTS if choose(client_id=c) == "B")
    assert choose(client_id=b_client, canary_enabled=True, canary_header="never") == "A"


def test_canary_header_is_ignored_when_canary_is_off():
    assert choose(canary_header="always", weight_a=1.0, weight_b=0.0) == "A"


def test_without_b_everything_goes_to_a():
    assert choose(b_loaded=False, canary_enabled=True, canary_header="always") == "A"


def test_client_ids_we_make_are_valid_and_others_are_checked():
    assert valid_client_id(new_client_id())
    assert not valid_client_id("short")
    assert not valid_client_id("has spaces in it!")
    assert not valid_client_id(None)


def test_without_any_weight_everything_goes_to_a():
    assert share_of_a(0, 0) == 1.0


def test_a_weight_of_zero_sends_even_the_lowest_bucket_to_b():
    assert variant_for_bucket(0.0, weights(0.0, 1.0)) == "B"
    assert variant_for_bucket(0.5, weights(1.0, 1.0)) == "B"  # A holds [0, 0.5)


def test_client_ids_we_make_carry_128_random_bits():
    ids = {new_client_id() for _ in range(100)}
    assert len(ids) == 100
    assert {len(i) for i in ids} == {22}, ids  # 16 bytes in URL-safe base64, no padding
