"""The paired accuracy gate: an exact McNemar test with the limit as a non-inferiority margin."""

from __future__ import annotations

from dataclasses import replace

from edgeserve.cli.analysis import FAIL, INCONCLUSIVE, PASS, Gates, StepWindow, evaluate
from edgeserve.traffic.mcnemar import paired_verdict

ALPHA = 0.05


def test_b_losing_far_more_discordant_pairs_than_the_margin_allows_fails():
    # the operator: only A right 68 times, only B right 18, in 1000 pairs: B - A = -5
    assert paired_verdict(18, 68, 1000, -0.03, ALPHA) == FAIL


def test_b_winning_as_many_discordant_pairs_as_a_passes_a_negative_margin():
    assert paired_verdict(40, 40, 1000, -0.03, ALPHA) == PASS


def test_too_few_discordant_pairs_to_tell_is_inconclusive():
    assert paired_verdict(3, 6, 100, -0.03, ALPHA) == INCONCLUSIVE


def test_a_margin_wider_than_every_discordant_pair_passes():
    assert paired_verdict(0, 5, 1000, -0.03, ALPHA) == PASS  # B - A >= -0.5 % whatever


def test_no_discordant_pair_passes_a_negative_margin_and_fails_a_positive_one():
    assert paired_verdict(0, 0, 500, -0.01, ALPHA) == PASS
    assert paired_verdict(0, 0, 500, 0.01, ALPHA) == FAIL


def test_the_boundary_uses_the_exact_binomial_tail():
    # 100 discordant of 1000 pairs, margin -3: at the limit B wins 35 % of them; 27 won gives
    # P(X <= 26 | 100, 0.35) = 3.5 %, 28 won 8.5 %
    assert paired_verdict(26, 74, 1000, -0.03, ALPHA) == FAIL
    assert paired_verdict(28, 72, 1000, -0.03, ALPHA) == INCONCLUSIVE


GATES = Gates(
    max_error_rate=0.01,
    max_latency_ratio=1.5,
    min_latency_delta_ms=5.0,
    min_agreement=None,
    min_accuracy_delta=-0.03,
    min_samples=100,
)


def accuracy_result(paired: dict[tuple[str, str], float]):
    judged = evaluate(StepWindow(paired=paired), GATES, 20, final=True)  # the deadline's look
    (result,) = [r for r in judged if "accuracy" in r.gate]
    return result


def test_with_enough_pairs_the_accuracy_gate_judges_the_pairs():
    result = accuracy_result(
        {("correct", "wrong"): 68, ("wrong", "correct"): 18, ("correct", "correct"): 914}
    )
    assert (result.gate, result.outcome) == ("accuracy (paired)", FAIL), result
    assert "only B right 18" in result.b and "1000 pairs" in result.samples, result


def test_with_too_few_pairs_the_accuracy_gate_stays_unpaired():
    result = accuracy_result({("correct", "correct"): 99})
    assert result.gate == "accuracy (feedback)", result


def test_pairs_do_not_judge_at_100_percent_where_a_serves_nothing():
    window = StepWindow(paired={("correct", "correct"): 500})
    (result,) = [r for r in evaluate(window, replace(GATES), 100) if "accuracy" in r.gate]
    assert result.gate == "accuracy (feedback)", result
