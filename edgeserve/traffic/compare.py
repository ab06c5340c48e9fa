"""How a shadow answer compares with the primary one: by label name, never by index."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from edgeserve.inference.model import Prediction

AGREE, DISAGREE, NO_COMMON_LABEL = "agree", "disagree", "no_common_label"
OUTCOMES = (AGREE, DISAGREE, NO_COMMON_LABEL)


@dataclass(frozen=True)
class Comparison:
    outcome: str
    """agree / disagree on the top-1 label, or no_common_label when B has no label of that name."""
    topk_overlap: float
    """Share of the primary's top-k labels that the shadow's top-k also holds."""
    score_delta: float
    """Absolute difference of the two top-1 scores."""

    @property
    def agree(self) -> bool:
        return self.outcome == AGREE


def compare(
    primary: list[Prediction],
    shadow: list[Prediction],
    shadow_labels: Container[str] | None = None,
) -> Comparison:
    """Compare two answers; with B's labels, an A answer B cannot give is no disagreement.

    `shadow_labels` is looked up, never copied: pass the model's `label_index` (a dict)."""
    if primary and shadow_labels is not None and primary[0].label not in shadow_labels:
        return Comparison(outcome=NO_COMMON_LABEL, topk_overlap=0.0, score_delta=0.0)
    if not primary or not shadow:
        return Comparison(outcome=DISAGREE, topk_overlap=0.0, score_delta=1.0)
    primary_labels = {p.label for p in primary}
    shadow_labels_k = {p.label for p in shadow[: len(primary)]}
    return Comparison(
        outcome=AGREE if primary[0].label == shadow[0].label else DISAGREE,
        topk_overlap=len(primary_labels & shadow_labels_k) / len(primary_labels),
        score_delta=abs(primary[0].score - shadow[0].score),
    )
