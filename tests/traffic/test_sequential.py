"""The guard's sequential test and its pairing: valid however often they are looked at."""

from __future__ import annotations

import math

import numpy as np

from edgeserve.traffic.pairing import Pairing
from edgeserve.traffic.sequential import SequentialTest, log_evalue, log_ratios


def crossed_share(rate: float, null: float, alpha: float, runs: int, trials: int) -> float:
    """The share of seeded runs whose e-value ever reached 1 / alpha, looked at after each trial."""
    hits = np.cumsum(np.random.default_rng(7).random((runs, trials)) < rate, axis=1)
    misses = np.arange(1, trials + 1) - hits
    terms = np.stack([hits * hit + misses * miss for hit, miss in log_ratios(null)])
    log_e = np.logaddexp.reduce(terms, axis=0) - math.log(len(terms))
    return float(np.mean((log_e >= math.log(1 / alpha)).any(axis=1)))


def test_a_fair_coin_watched_after_every_toss_crosses_at_most_alpha_of_the_time():
    assert crossed_share(0.5, 0.5, alpha=0.01, runs=1000, trials=1000) <= 0.01


def test_a_rate_at_the_limit_watched_after_every_trial_crosses_at_most_alpha_of_the_time():
    assert crossed_share(0.05, 0.05, alpha=0.01, runs=500, trials=2000) <= 0.01


def test_a_coin_biased_to_four_in_five_crosses_within_a_hundred_tosses():
    assert crossed_share(0.8, 0.5, alpha=0.01 / 3, runs=500, trials=100) >= 0.99


def test_no_trials_are_no_evidence():
    assert log_evalue(0, 0, 0.5) == 0.0


def test_a_limit_of_zero_still_gives_finite_evidence():
    assert math.isfinite(log_evalue(3, 10, 0.0))


def test_crossing_is_kept_when_misses_follow():
    test = SequentialTest(0.5, 0.01)
    for _ in range(20):
        test.add(True)
    for _ in range(100):
        test.add(False)
    assert test.crossed and test.evalue() < 1, test.evalue()


def test_a_pair_is_a_then_b_whichever_arrives_first():
    pairing: Pairing[str] = Pairing()
    assert pairing.add("B", "b1") is None
    assert pairing.add("A", "a1") == ("a1", "b1")


def test_the_busier_arm_pairs_its_latest_outcome():
    pairing: Pairing[str] = Pairing()
    for value in ("a1", "a2", "a3"):
        assert pairing.add("A", value) is None
    assert pairing.add("B", "b1") == ("a3", "b1")
    assert pairing.add("B", "b2") is None  # the pair used a3: b2 waits for A's next
