"""How a shadow answer is compared with the primary one (docs/operations.md, shadow)."""

from __future__ import annotations

import pytest

from edgeserve.inference.model import Prediction
from edgeserve.traffic.compare import AGREE, DISAGREE, NO_COMMON_LABEL, compare


def answer(*labelled: tuple[str, float]) -> list[Prediction]:
    return [
        Prediction(index=i, label=label, score=score) for i, (label, score) in enumerate(labelled)
    ]


def test_same_top1_agrees_and_the_score_delta_is_the_absolute_difference():
    result = compare(answer(("red", 0.9), ("blue", 0.1)), answer(("red", 0.6), ("green", 0.3)))
    assert result.agree
    assert result.score_delta == pytest.approx(0.3)
    assert result.topk_overlap == pytest.approx(0.5)


def test_a_different_top1_disagrees_and_the_delta_is_never_negative():
    result = compare(answer(("red", 0.5), ("blue", 0.4)), answer(("blue", 0.8), ("red", 0.1)))
    assert not result.agree
    assert result.score_delta == pytest.approx(0.3)
    assert result.topk_overlap == 1.0


def test_overlap_counts_only_the_shadows_first_k_labels():
    primary = answer(("red", 0.6), ("blue", 0.3))
    shadow = answer(("red", 0.5), ("green", 0.3), ("blue", 0.2))  # blue is beyond k=2
    assert compare(primary, shadow).topk_overlap == 0.5


@pytest.mark.parametrize(
    ("primary", "shadow"), [([], answer(("red", 1.0))), (answer(("red", 1.0)), [])]
)
def test_an_empty_answer_is_the_worst_comparison(primary, shadow):
    result = compare(primary, shadow)
    assert (result.outcome, result.topk_overlap, result.score_delta) == (DISAGREE, 0.0, 1.0)


def test_an_a_label_that_b_does_not_know_is_no_common_label_not_a_disagreement():
    primary = answer(("yellow", 0.9), ("red", 0.1))
    result = compare(primary, answer(("orange", 0.8)), shadow_labels=["red", "orange"])
    assert (result.outcome, result.topk_overlap, result.score_delta) == (NO_COMMON_LABEL, 0.0, 0.0)
    assert not result.agree


def test_with_b_knowing_the_label_the_answers_are_compared():
    primary = answer(("red", 0.9), ("blue", 0.1))
    result = compare(primary, answer(("red", 0.7), ("blue", 0.3)), shadow_labels=["blue", "red"])
    assert result.outcome == AGREE and result.topk_overlap == 1.0
