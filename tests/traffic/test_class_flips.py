"""Per-class flips: a bounded count of A's top-1 label against B's, and the gate on it."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

from edgeserve.cli.analysis import FAIL, INCONCLUSIVE, PASS, Gates, StepWindow, evaluate
from edgeserve.cli.scrape import parse
from edgeserve.traffic.binomial import at_least, at_most
from edgeserve.traffic.class_flips import (
    MAX_CLASSES,
    OTHER,
    ClassLabels,
    SinceCandidate,
    class_rows,
    flips,
)

GATES = Gates(
    max_error_rate=0.01,
    max_latency_ratio=1.5,
    min_latency_delta_ms=5.0,
    min_agreement=None,
    min_accuracy_delta=None,
    min_samples=20,
    max_class_flips={"yellow": 0.1},
)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k), term by term in plain floats: the textbook sum."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


def test_a_model_with_100_labels_counts_under_at_most_21_names_per_axis():
    labels = ClassLabels()
    pairs = {labels.pair(f"a{i}", f"b{(i * 7) % 100}") for i in range(100) for _ in range(3)}
    names = {a for a, _ in pairs} | {b for _, b in pairs}
    assert len(names) <= MAX_CLASSES + 1 and OTHER in names, sorted(names)


def test_the_labels_seen_first_keep_their_names():
    labels = ClassLabels(capacity=2)
    assert labels.pair("yellow", "orange") == ("yellow", "orange")
    assert labels.pair("red", "yellow") == (OTHER, "yellow")
    assert labels.pair("yellow", "red") == ("yellow", OTHER)


def answered(labels: ClassLabels, counts: dict[str, int]) -> None:
    for label, times in counts.items():
        for _ in range(times):
            labels.count(label)


def test_a_new_b_names_the_labels_a_answered_most_not_the_first_seen():
    labels = ClassLabels(capacity=2)
    assert labels.pair("blue", "green") == ("blue", "green")
    answered(labels, {"blue": 1, "yellow": 5, "red": 3})
    assert labels.pair("yellow", "yellow") == (OTHER, OTHER)
    labels.restart()
    assert labels.pair("yellow", "red") == ("yellow", "red")
    assert labels.pair("blue", "green") == (OTHER, OTHER)


def test_the_names_stay_fixed_for_the_life_of_a_b():
    labels = ClassLabels(capacity=1)
    answered(labels, {"red": 2})
    labels.restart()
    answered(labels, {"yellow": 9})
    assert labels.pair("yellow", "red") == (OTHER, "red")
    labels.restart()
    assert labels.pair("yellow", "red") == ("yellow", OTHER)


def test_with_little_history_the_labels_seen_first_fill_the_rest():
    labels = ClassLabels(capacity=2)
    answered(labels, {"red": 1})
    labels.restart()
    assert labels.pair("blue", "green") == ("blue", OTHER)
    assert labels.pair("red", "green") == ("red", OTHER)


def test_a_scrape_sums_a_label_pair_over_the_b_versions_metrics_shows():
    series = 'edgeserve_shadow_class_pairs_total{a_label="yellow",b_label="orange",b_version='
    text = f'{series}"b1"}} 2\n{series}"b2"}} 2\n'
    assert parse(text, at=0.0).class_pairs == {("yellow", "orange"): 4.0}


def test_flips_are_the_share_of_a_label_that_b_answers_otherwise():
    pairs = {("yellow", "orange"): 6.0, ("yellow", "yellow"): 2.0, ("red", "red"): 5.0}
    assert flips(pairs, "yellow") == (6.0, 8.0)
    assert flips(pairs, "red") == (0.0, 5.0)
    assert flips(pairs, "blue") == (0.0, 0.0)


def test_rows_put_the_most_compared_label_first_and_other_last():
    pairs = {("red", "red"): 3.0, ("yellow", "orange"): 6.0, (OTHER, "red"): 9.0}
    rows = class_rows(pairs)
    assert [row["a_label"] for row in rows] == ["yellow", "red", OTHER], rows
    assert rows[0]["b_labels"] == {"orange": 6} and rows[0]["flip_rate"] == 1.0, rows


def test_counts_start_again_when_b_changes():
    since = SinceCandidate()
    since.restart("b1", {("yellow", "orange"): 6.0})
    assert since.since({("yellow", "orange"): 9.0, ("red", "red"): 1.0}) == {
        ("yellow", "orange"): 3.0,
        ("red", "red"): 1.0,
    }


def test_the_binomial_tails_match_the_textbook_sum():
    for k, n, p in [(0, 10, 0.3), (3, 10, 0.3), (10, 10, 0.3), (7, 40, 0.1), (25, 200, 0.1)]:
        assert math.isclose(at_least(k, n, p), binomial_tail(k, n, p), rel_tol=1e-9)
        assert math.isclose(at_most(k, n, p), 1 - binomial_tail(k + 1, n, p), abs_tol=1e-12)


def test_a_far_lower_tail_is_summed_itself_not_taken_as_one_minus_the_rest():
    # P(X <= 10 | 300, 0.5) is about 1e-70: one minus the upper tail would round it to 0
    textbook = sum(math.comb(300, i) for i in range(11)) / 2**300
    assert math.isclose(at_most(10, 300, 0.5), textbook, rel_tol=1e-9)


def test_a_tail_of_thousands_of_terms_matches_the_textbook_sum():
    # P(X >= 560 | 5000, 0.1) in exact integers: sum C(5000, i) 9^(5000 - i) / 10^5000
    hits = sum(math.comb(5000, i) * 9 ** (5000 - i) for i in range(560, 5001))
    assert math.isclose(at_least(560, 5000, 0.1), float(Fraction(hits, 10**5000)), rel_tol=1e-9)


def flip_window(changed: int, kept: int) -> StepWindow:
    return StepWindow(class_pairs={("yellow", "orange"): changed, ("yellow", "yellow"): kept})


def flip_outcome(changed: int, kept: int, limit: float = 0.1) -> str:
    gates = replace(GATES, max_class_flips={"yellow": limit})
    # one look, at the step's deadline (cli.looks): each side at 2.5 %
    judged = evaluate(flip_window(changed, kept), gates, 20, final=True)
    (result,) = [r for r in judged if "yellow" in r.gate]
    return result.outcome


def test_a_label_b_changes_significantly_more_often_than_the_limit_fails():
    assert flip_outcome(changed=40, kept=0) == FAIL
    assert flip_outcome(changed=9, kept=31) == FAIL  # 22.5 %: P(X >= 9 | 40, 10 %) = 1.5 %


def test_a_flip_share_near_the_limit_is_inconclusive():
    assert flip_outcome(changed=8, kept=32) == INCONCLUSIVE  # 20 %: P(X >= 8) = 4.2 %
    assert flip_outcome(changed=2, kept=38) == INCONCLUSIVE  # 5 %: P(X <= 2) = 22 %


def test_a_flip_share_surely_below_the_limit_passes():
    assert flip_outcome(changed=0, kept=40) == PASS  # P(X = 0 | 40, 10 %) = 1.5 %


def test_a_limit_of_100_percent_allows_every_flip():
    assert flip_outcome(changed=40, kept=0, limit=1.0) == PASS


def test_the_flip_gate_waits_for_min_samples_of_its_label():
    assert flip_outcome(changed=19, kept=0) == "wait"
