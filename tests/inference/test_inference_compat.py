"""Hot-load compatibility and shadow comparison: pure functions, by label name."""

from __future__ import annotations

import pytest

from edgeserve.errors import ModelLoadError
from edgeserve.inference.compat import check_labels
from edgeserve.inference.model import Prediction
from edgeserve.traffic.compare import compare

A = ("cat", "dog", "fox")


def test_same_label_set_in_another_order_is_compatible():
    check_labels(("fox", "cat", "dog"), A, slot="B", allowed=False)


def test_an_empty_other_slot_accepts_any_labels():
    check_labels(("x", "y"), None, slot="B", allowed=False)


def test_b_may_add_a_class_a_does_not_have():
    check_labels((*A, "owl"), A, slot="B", allowed=False)
    check_labels(A, (*A, "owl"), slot="A", allowed=False)


@pytest.mark.parametrize(
    ("new", "other", "slot"),
    [(("cat", "dog", "owl"), A, "B"), (("cat", "dog", "fox", "yak"), ("cat", "dog", "owl"), "A")],
)
def test_labels_of_a_that_b_cannot_name_are_refused_with_422_labels_mismatch(new, other, slot):
    with pytest.raises(ModelLoadError) as err:
        check_labels(new, other, slot=slot, allowed=False)
    error = err.value
    assert (error.status_code, error.code) == (422, "labels_mismatch"), error
    assert "no label for" in error.message and "\n" not in error.message, error.message
    assert '"allow_label_change": true' in error.message, error.message


def test_the_message_names_what_b_lacks():
    with pytest.raises(ModelLoadError, match=r"no label for 1 of slot A's labels \(fox\)"):
        check_labels(("cat", "dog", "owl"), A, slot="B", allowed=False)


def test_an_intended_label_change_is_allowed():
    check_labels(("owl", "yak"), A, slot="B", allowed=True)


def answer(*labels: str) -> list[Prediction]:
    return [Prediction(i, label, 0.9 - i / 10) for i, label in enumerate(labels)]


def test_shadow_compares_by_label_name_not_index():
    result = compare(answer("dog", "cat"), [Prediction(7, "dog", 0.8), Prediction(2, "cat", 0.1)])
    assert (result.outcome, result.topk_overlap) == ("agree", 1.0), result


def test_an_answer_b_has_no_label_for_is_no_common_label_not_a_disagreement():
    result = compare(answer("dog"), answer("owl"), shadow_labels=("owl", "yak"))
    assert (result.outcome, result.agree) == ("no_common_label", False), result


def test_a_label_b_knows_but_ranks_lower_is_a_disagreement():
    result = compare(answer("dog", "cat"), answer("cat", "dog"), shadow_labels=A)
    assert result.outcome == "disagree" and result.topk_overlap == 1.0, result
