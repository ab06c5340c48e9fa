"""Feedback tokens: only ours, intact and unexpired verify; a token counts once per worker."""

from __future__ import annotations

import base64

import orjson
import pytest

from edgeserve.traffic.feedback import Answer, InvalidToken, SeenTokens, issue, verify

SECRET = "s" * 32
NOW = 1_800_000_000.0


def token(**overrides) -> str:
    claims = {"variant": "B", "version": "abc123", "label": "red", "now": NOW, "ttl": 60}
    claims.update(overrides)
    return issue(SECRET, **claims)


def with_claim(original: str, name: str, value) -> str:
    """The token with one claim changed and the original signature kept."""
    body, _, signature = original.partition(".")
    claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims[name] = value
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return f"{forged}.{signature}"


def test_a_token_names_variant_version_and_top1_label():
    answer = verify(SECRET, token(), NOW + 1)
    assert (answer.variant, answer.version, answer.label) == ("B", "abc123", "red")


def test_every_token_is_different_so_each_answer_counts_on_its_own():
    assert token() != token()


@pytest.mark.parametrize(
    ("claim", "value"), [("v", "A"), ("m", "zzz"), ("l", "blue"), ("e", 9e9), ("n", "x")]
)
def test_changing_any_claim_breaks_the_signature(claim, value):
    with pytest.raises(InvalidToken, match="forged or altered"):
        verify(SECRET, with_claim(token(), claim, value), NOW)


def test_another_secret_does_not_verify():
    with pytest.raises(InvalidToken, match="forged or altered"):
        verify("t" * 32, token(), NOW)


@pytest.mark.parametrize("garbage", ["", "x", ".", "a.b", "é" * 10, "a" * 5000])
def test_garbage_is_refused(garbage):
    with pytest.raises(InvalidToken):
        verify(SECRET, garbage, NOW)


def test_an_expired_token_is_refused():
    with pytest.raises(InvalidToken, match="expired"):
        verify(SECRET, token(ttl=60), NOW + 61)


def test_a_token_counts_once():
    seen = SeenTokens(capacity=10)
    answer = verify(SECRET, token(), NOW)
    assert seen.first_time(answer, NOW)
    assert not seen.first_time(answer, NOW)


def test_replay_memory_is_bounded():
    seen = SeenTokens(capacity=3)
    for index in range(10):
        seen.first_time(Answer("A", "v", "red", int(NOW) + 60, f"n{index}"), NOW)
    assert len(seen.expiry) == 3


def test_expired_tokens_are_forgotten_first():
    seen = SeenTokens(capacity=10)
    seen.first_time(Answer("A", "v", "red", int(NOW) + 1, "old"), NOW)
    seen.first_time(Answer("A", "v", "red", int(NOW) + 100, "new"), NOW + 50)
    assert list(seen.expiry) == ["new"]
