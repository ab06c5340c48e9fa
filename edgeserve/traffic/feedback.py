"""Ground-truth feedback: signed, expiring tokens that name what answered and what it said.

The token carries everything needed to score the answer later (variant, model version, top-1
label, expiry and a nonce), signed with HMAC-SHA256 under FEEDBACK_SECRET. Any instance that
shares the secret can verify it, so no server-side storage is needed across a fleet. A worker
remembers the nonces it has counted (bounded, oldest first out) so a token counts once there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from edgeserve.variants import VARIANTS

MAX_TOKEN_CHARS = 1024
"""Longer strings are refused before any decoding: real tokens are about 200 characters."""


class InvalidToken(ValueError):
    """The token is forged, altered, malformed or expired; the message says which."""


@dataclass(frozen=True)
class Answer:
    """What one /v1/infer answer said, as its feedback token carries it."""

    variant: str
    version: str
    label: str
    expires: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def issue(
    secret: str,
    *,
    variant: str,
    version: str,
    label: str,
    now: float,
    ttl: int,
    nonce: str | None = None,
) -> str:
    """A token for one answer, valid for `ttl` seconds from `now` (unix seconds); its nonce
    (a new one unless given) tells it from every other."""
    claims = {
        "v": variant,
        "m": version,
        "l": label,
        "e": int(now) + ttl,
        "n": nonce or new_nonce(),
    }
    body = _b64(orjson.dumps(claims))
    return f"{body}.{_signature(secret, body)}"


def verify(secret: str, token: str, now: float) -> Answer:
    """The answer a token names; InvalidToken unless it is ours, intact and unexpired."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise InvalidToken("feedback_token must be the string from a /v1/infer answer")
    body, _, signature = token.partition(".")
    # Compare the signature before reading the body: nothing unsigned is ever parsed.
    if not hmac.compare_digest(signature.encode(), _signature(secret, body).encode()):
        raise InvalidToken(
            "feedback_token is not one this service issued (forged or altered): "
            "send the token exactly as /v1/infer returned it"
        )
    try:
        claims = orjson.loads(_unb64(body))
        answer = Answer(
            variant=str(claims["v"]),
            version=str(claims["m"]),
            label=str(claims["l"]),
            expires=int(claims["e"]),
            nonce=str(claims["n"]),
        )
    except (orjson.JSONDecodeError, binascii.Error, KeyError, TypeError, ValueError):
        raise InvalidToken(
            "feedback_token is signed but unreadable: ask for a new answer"
        ) from None
    if answer.variant not in VARIANTS:
        raise InvalidToken("feedback_token names no variant A or B")
    if now > answer.expires:
        raise InvalidToken(
            "feedback_token has expired (FEEDBACK_TOKEN_TTL_SECONDS): "
            "feedback is accepted only for recent answers"
        )
    return answer


class SeenTokens:
    """Nonces already counted, at most `capacity`, forgotten oldest first or once expired."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.expiry: OrderedDict[str, int] = OrderedDict()

    def first_time(self, answer: Answer, now: float) -> bool:
        """True the first time a token is seen (and remember it); False for a replay."""
        while self.expiry and next(iter(self.expiry.values())) < now:
            self.expiry.popitem(last=False)  # cheap: only the oldest counted are checked
        if answer.nonce in self.expiry:
            return False
        self.expiry[answer.nonce] = answer.expires
        if len(self.expiry) > self.capacity:
            self.expiry.popitem(last=False)
        return True
