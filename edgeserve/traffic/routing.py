"""Which variant answers a request: pure functions, no I/O, so the maths is unit-testable."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from edgeserve.ids import urlsafe_id
from edgeserve.variants import CANDIDATE, CURRENT, Variant, share

CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CANARY_FORCES: dict[str, Variant] = {"always": CANDIDATE, "never": CURRENT}


def bucket_of(client_id: str) -> float:
    """A stable point in [0, 1) for a client id, uniform over ids."""
    digest = hashlib.sha256(client_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def variant_for_bucket(bucket: float, weights: Mapping[Variant, float]) -> Variant:
    """Buckets below A's share go to A, so raising B's weight only moves A clients to B."""
    return CURRENT if bucket < share(weights, CURRENT) else CANDIDATE


def new_client_id() -> str:
    return urlsafe_id()


def valid_client_id(value: str | None) -> bool:
    return value is not None and CLIENT_ID_PATTERN.match(value) is not None


def canary_force(header_value: str | None) -> Variant | None:
    """The variant an X-Canary header forces, or None when it forces nothing."""
    if header_value is None:
        return None
    return CANARY_FORCES.get(header_value.strip().lower())


def choose_variant(
    *,
    weights: Mapping[Variant, float],
    b_loaded: bool,
    canary_enabled: bool,
    canary_header: str | None,
    client_id: str | None,
    random_bucket: float,
) -> Variant:
    """NGINX-style precedence: X-Canary (when enabled) > sticky client id > weights."""
    if not b_loaded:
        return CURRENT
    if canary_enabled:
        forced = canary_force(canary_header)
        if forced is not None:
            return forced
    bucket = bucket_of(client_id) if client_id is not None else random_bucket
    return variant_for_bucket(bucket, weights)
