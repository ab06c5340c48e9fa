"""A seeded Monte Carlo run of the accuracy gate's own code: how often it fails, passes or
cannot tell, for true accuracies the operator cares about.

Paired cases draw, per run, how many of `pairs` inputs both models got right, only B, only A
or neither, and judge them as the gate does (traffic.mcnemar). Unpaired cases draw each arm's
right answers and judge them with the unpaired interval (cli.analysis). `make simulate` prints
the table the runbook quotes (docs/operations.md, 3a)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from edgeserve.cli.analysis import Arm, accuracy_verdict
from edgeserve.cli.looks import Looks
from edgeserve.traffic.mcnemar import paired_verdict

MARGIN = -0.03
"""The operator's limit: B may be at most 3 points less accurate than A."""
ONE_LOOK = Looks().final_alpha
"""The level of a rollout step's look at its deadline (cli.looks): each case is that look."""


@dataclass(frozen=True)
class PairedCase:
    name: str
    a_only: float
    """Share of inputs only A gets right."""
    b_only: float
    """Share of inputs only B gets right."""
    both: float
    pairs: int


@dataclass(frozen=True)
class UnpairedCase:
    name: str
    a_accuracy: float
    b_accuracy: float
    a_samples: int
    b_samples: int


EQUAL = [
    PairedCase("equal accuracy (90 %), 8 % discordant", 0.04, 0.04, 0.86, pairs)
    for pairs in (200, 500, 2000)
]
AT_LIMIT = [
    PairedCase("B exactly at the limit (90 % vs 87 %)", 0.055, 0.025, 0.845, pairs)
    for pairs in (200, 2000)
]
WORSE = [
    PairedCase("B 5 points worse (90 % vs 85 %)", 0.07, 0.02, 0.83, pairs) for pairs in (500, 2000)
]
PAIRED_CASES = EQUAL + AT_LIMIT + WORSE
UNPAIRED_CASES = [
    UnpairedCase("equal accuracy (90 %), unpaired", 0.90, 0.90, 200, 200),
    UnpairedCase("the operator's int8 case (true gap -1.7 points)", 0.94, 0.923, 51, 66),
]


def paired_outcomes(case: PairedCase, runs: int, seed: int) -> Counter[str]:
    rng = np.random.default_rng(seed)
    neither = 1 - case.a_only - case.b_only - case.both
    draws = rng.multinomial(case.pairs, [case.b_only, case.a_only, case.both, neither], runs)
    return Counter(
        paired_verdict(int(b), int(a), case.pairs, MARGIN, ONE_LOOK) for b, a, _, _ in draws
    )


def unpaired_outcomes(case: UnpairedCase, runs: int, seed: int) -> Counter[str]:
    rng = np.random.default_rng(seed)
    a_right = rng.binomial(case.a_samples, case.a_accuracy, runs)
    b_right = rng.binomial(case.b_samples, case.b_accuracy, runs)
    return Counter(
        accuracy_verdict(
            Arm(correct=float(b), judged=case.b_samples),
            Arm(correct=float(a), judged=case.a_samples),
            MARGIN,
            ONE_LOOK,
        )
        for a, b in zip(a_right, b_right, strict=True)
    )


def row(name: str, samples: str, runs: int, outcomes: Counter[str]) -> str:
    shares = " | ".join(
        f"{outcomes[verdict] / runs:.1%}" for verdict in ("fail", "pass", "inconclusive")
    )
    return f"| {name} | {samples} | {runs} | {shares} |"


def main(runs: int = 10_000, seed: int = 22) -> None:
    print(f"Accuracy gate, limit B - A >= {MARGIN:+.0%}, {runs} seeded runs per case")
    print("| case | samples | runs | fail | pass | inconclusive |")
    print("|---|--:|--:|--:|--:|--:|")
    for case in PAIRED_CASES:
        print(row(case.name, f"{case.pairs} pairs", runs, paired_outcomes(case, runs, seed)))
    for unpaired in UNPAIRED_CASES:
        samples = f"{unpaired.a_samples} A, {unpaired.b_samples} B"
        print(row(unpaired.name, samples, runs, unpaired_outcomes(unpaired, runs, seed)))


if __name__ == "__main__":
    main()
