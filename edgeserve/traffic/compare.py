"""How a shadow answer compares with the primary one."""

from __future__ import annotations

from dataclasses import dataclass

from edgeserve.inference.model import Prediction


@dataclass(frozen=True)
class Comparison:
    agree: bool
    """Both answers have the same top-1 label."""
    topk_overlap: float
    """Share of the primary's top-k labels that the shadow's top-k also holds."""
    score_delta: float
    """Absolute difference of the two top-1 scores."""


def compare(primary: list[Prediction], shadow: list[Prediction]) -> Comparison:
    if not primary or not shadow:
        return Comparison(agree=False, topk_overlap=0.0, score_delta=1.0)
    primary_labels = {p.label for p in primary}
    shadow_labels = {p.label for p in shadow[: len(primary)]}
    return Comparison(
        agree=primary[0].label == shadow[0].label,
        topk_overlap=len(primary_labels & shadow_labels) / len(primary_labels),
        score_delta=abs(primary[0].score - shadow[0].score),
    )
