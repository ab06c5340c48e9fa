"""The two variant slots, named once: A serves, B is the candidate.

Inside the core the weights are a mapping from variant to weight; `ab_weight_a`/`ab_weight_b`
are the contract's names for them at the edges (environment, JSON, CLI).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, cast

Variant = Literal["A", "B"]
VARIANTS: tuple[Variant, ...] = ("A", "B")
CURRENT: Variant = "A"
CANDIDATE: Variant = "B"
WEIGHT_FIELDS: dict[Variant, str] = {
    variant: f"ab_weight_{variant.lower()}" for variant in VARIANTS
}
"""Each variant's weight under its contract name."""


def parse_variant(text: str) -> Variant | None:
    """`text` as a variant, case-insensitive; None when it names neither."""
    upper = text.strip().upper()
    return cast(Variant, upper) if upper in VARIANTS else None


def other(variant: Variant) -> Variant:
    return CANDIDATE if variant == CURRENT else CURRENT


def weights_of(fields: Mapping[str, object]) -> dict[Variant, float]:
    """The weights held under their contract names (a state, a config answer)."""
    return {variant: float(cast(float, fields[name])) for variant, name in WEIGHT_FIELDS.items()}


def share(weights: Mapping[Variant, float], variant: Variant) -> float:
    """A variant's normalised share of traffic in [0, 1]; with no weight at all, A takes it all."""
    total = sum(weights.values())
    if total <= 0:
        return 1.0 if variant == CURRENT else 0.0
    return weights[variant] / total
