"""A seeded Monte Carlo run of one rollout step, as `admin rollout` judges it: how often a B at
its limit fails the step, and how often a clearly worse B does, when the gates are looked at
every second until the step's deadline.

Each run draws, second by second, the samples that reach one gate (Poisson arrivals, each a
success or not by the case's true rates; for latency, each a model run of A or B counted in the
histogram bucket its log-normal run time falls in), and from the end of the soak to the
deadline asks the gates' own code (cli.analysis.evaluate) for a verdict every POLL_SECONDS, as
judge_step does.
Two ways of looking are compared on the same seeds: `every second` tests at the full 5 % at
every poll, as the rollout did before (latency: B's p95 against the limit, as it did before
it had a test); `bounded looks` keeps the step's looks (cli.looks).

A whole rollout is STEPS such steps, each on samples of its own; a B that meets its limit is
wrongly stopped if any of them fails it. `before` gives each step the full level on its fail
side, as the rollout did before; `split` gives each step its share (cli.looks).

`python -m edgeserve.cli.rollout_simulation [steps|rollouts]` (`make simulate`: both) prints the
tables the runbook quotes (docs/operations.md, 3a).
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from edgeserve.cli.analysis import (
    FAIL,
    PASS,
    WAIT,
    Arm,
    Gates,
    StepWindow,
    evaluate,
    latency_limit,
    overall,
)
from edgeserve.cli.looks import StepLooks
from edgeserve.cli.rollout import POLL_SECONDS
from edgeserve.cli.scrape import histogram_quantile
from edgeserve.observability.metrics import RUN_BUCKETS
from edgeserve.traffic.paired_feedback import CORRECT, WRONG
from edgeserve.variants import CANDIDATE, CURRENT

INTERVAL, MAX_WAIT = 10, 60
"""Seconds of soak before the first verdict, then seconds a step may wait for one."""
LONG_WAIT = 600
"""A step that waits ten times as long: more polls, the same number of looks."""
STEPS = 5
"""The steps of the default rollout, 5,10,25,50,100 %."""
ROLLOUT_RUNS = 1000
"""Seeded rollouts per case: each is STEPS steps, so 5,000 step runs a case."""
UNDECIDED = "undecided"
"""Still inconclusive (or short of samples) at the deadline: the step stops without promoting."""
NEED = 100
OPEN = Gates(
    max_error_rate=1.0,
    max_latency_ratio=1.5,
    min_latency_delta_ms=5.0,
    min_agreement=None,
    min_accuracy_delta=None,
    min_samples=NEED,
)
"""Every gate off or passing, so a case's own gate decides the step."""
LOOKED_AT = 10**6
"""Requests per arm behind the latency gate: far more than it needs, so it passes."""


def _arm(
    requests: float = LOOKED_AT, errors: float = 0, correct: float = 0, judged: float = 0
) -> Arm:
    runs = {0.002: requests - errors, float("inf"): requests - errors}
    return Arm(requests, errors, runs, correct, judged)


def _window(a: Arm, b: Arm, **counts: Any) -> StepWindow:
    return StepWindow(arms={CURRENT: a, CANDIDATE: b}, **counts)


@dataclass(frozen=True)
class Gate:
    """One gate turned on, and how the step's counts at a moment make its window."""

    name: str
    gates: Gates
    window: Callable[[np.ndarray], StepWindow]
    """The step's window from each cell's cumulative count."""
    before: Callable[[StepWindow], str] | None = None
    """How the gate judged a window before it had a test, if it had none."""


PAIR_CELLS = ((CORRECT, WRONG), (WRONG, CORRECT), (CORRECT, CORRECT), (WRONG, WRONG))
ERROR = Gate(
    "error rate <= 1 %",
    replace(OPEN, max_error_rate=0.01),
    lambda c: _window(_arm(), _arm(requests=c.sum(), errors=c[0])),
)
"""Cells: B's failed requests, the rest."""
AGREEMENT = Gate(
    "agreement >= 90 %",
    replace(OPEN, min_agreement=0.9),
    lambda c: _window(_arm(), _arm(), agree=c[0], compared=c.sum()),
)
"""Cells: comparisons where B agreed with A, the rest."""
FLIPS = Gate(
    "class flips yellow <= 10 %",
    replace(OPEN, max_class_flips={"yellow": 0.1}),
    lambda c: _window(
        _arm(), _arm(), class_pairs={("yellow", "orange"): c[0], ("yellow", "yellow"): c[1]}
    ),
)
"""Cells: A's yellow answers B changed, the rest."""
PAIRED = Gate(
    "accuracy, paired, B - A >= -3 points",
    replace(OPEN, min_accuracy_delta=-0.03),
    lambda c: _window(
        # the pairs' feedback counts on A's answers: until there are enough pairs, the gate
        # waits for feedback on B's answers too rather than not applying
        _arm(correct=c[0] + c[2], judged=c.sum()),
        _arm(),
        paired=dict(zip(PAIR_CELLS, c, strict=True)),
    ),
)
"""Cells: pairs only A got right, only B, both, neither."""
UNPAIRED = Gate(
    "accuracy, unpaired, B - A >= -3 points",
    replace(OPEN, min_accuracy_delta=-0.03),
    lambda c: _window(
        _arm(correct=c[0], judged=c[0] + c[2]), _arm(correct=c[1], judged=c[1] + c[3])
    ),
)
"""Cells: feedback A right, B right, A wrong, B wrong (each arm half the feedback)."""
RUN_MS, RUN_SIGMA = 10.0, 0.3
"""A's model runs: log-normal around 10 ms with sigma 0.3, as in the canary guard's simulation."""
CELLS = len(RUN_BUCKETS) + 1
"""One cell per histogram bucket, the last above every edge."""


def run_time_cells(median_ms: float, sigma: float = RUN_SIGMA) -> np.ndarray:
    """Each histogram bucket's share of log-normal run times (the last: above every edge)."""
    below = [NormalDist().cdf(np.log(edge * 1000 / median_ms) / sigma) for edge in RUN_BUCKETS]
    return np.diff([0.0, *below, 1.0])


def run_buckets(cells: np.ndarray) -> dict[float, float]:
    """Cumulative bucket counts as /metrics exposes them, from each bucket's runs."""
    return dict(zip([*RUN_BUCKETS, float("inf")], np.cumsum(cells).tolist(), strict=True))


def _runs(cells: np.ndarray) -> Arm:
    return Arm(requests=float(cells.sum()), run_buckets=run_buckets(cells))


def point_latency(window: StepWindow) -> str:
    """The latency gate before its test: B's measured p95 against the limit from A's, so a
    p95 a little above the limit by chance failed the step."""
    a, b = window.arms[CURRENT], window.arms[CANDIDATE]
    if min(a.requests, b.requests) < NEED or a.p95 is None or b.p95 is None:
        return WAIT
    return FAIL if b.p95 > latency_limit(a.p95, OPEN) else PASS


LATENCY = Gate(
    "p95 inference <= 1.5x or +5 ms",
    OPEN,
    lambda c: _window(_runs(c[CELLS:]), _runs(c[:CELLS])),
    point_latency,
)
"""Cells: B's runs per bucket, then A's (each arm half the runs)."""


@dataclass(frozen=True)
class Case:
    gate: Gate
    truth: str
    shares: tuple[float, ...]
    """Each sample's chance of landing in each cell but the last (the rest)."""
    per_second: float
    """Samples reaching the gate per second."""


def cases(per_second: float) -> list[Case]:
    """For each gate: a B exactly at its limit, and a clearly worse one (latency: also one as
    fast as A). Feedback comes slower than requests: a quarter of the rate; latency counts runs
    of both arms, `per_second` each."""
    feedback = per_second / 4
    return [
        Case(ERROR, "at the limit: 1 %", (0.01,), per_second),
        Case(ERROR, "worse: 3 %", (0.03,), per_second),
        Case(AGREEMENT, "at the limit: 90 %", (0.90,), per_second),
        Case(AGREEMENT, "worse: 85 %", (0.85,), per_second),
        Case(FLIPS, "at the limit: 10 %", (0.10,), per_second),
        Case(FLIPS, "worse: 15 %", (0.15,), per_second),
        Case(PAIRED, "at the limit: 90 % vs 87 %", (0.055, 0.025, 0.845), feedback),
        Case(PAIRED, "worse: 90 % vs 85 %", (0.07, 0.02, 0.83), feedback),
        Case(UNPAIRED, "at the limit: 90 % vs 87 %", (0.45, 0.435, 0.05), feedback),
        Case(UNPAIRED, "worse: 90 % vs 80 %", (0.45, 0.40, 0.05), feedback),
        *(
            Case(LATENCY, truth, _both_arms(median_ms), 2 * per_second)
            for truth, median_ms in (
                ("as fast as A", RUN_MS),
                ("at the limit: p95 1.5x A's", at_the_latency_limit_ms()),
                ("worse: 2x slower", 2 * RUN_MS),
            )
        ),
    ]


def at_the_latency_limit_ms() -> float:
    """B's median run time whose p95 is exactly the gate's limit: 1.5x A's p95 as A's histogram
    gives it (16.7 ms, where the log-normal's own is 16.4: interpolation within a bucket)."""
    a_p95 = histogram_quantile(0.95, run_buckets(run_time_cells(RUN_MS)))
    assert a_p95 is not None
    return latency_limit(a_p95, OPEN) * 1000 / math.exp(NormalDist().inv_cdf(0.95) * RUN_SIGMA)


def _both_arms(b_median_ms: float) -> tuple[float, ...]:
    """Half the runs B's, half A's, each bucketed by its arm's run times."""
    shares = np.concatenate([run_time_cells(b_median_ms), run_time_cells(RUN_MS)]) / 2
    return tuple(shares[:-1].tolist())


def counts_by_second(case: Case, runs: int, seed: int, max_wait: int) -> np.ndarray:
    """(runs, seconds, cells): each cell's cumulative count at the end of each second."""
    rng = np.random.default_rng(seed)
    seconds = INTERVAL + max_wait
    arrivals = rng.poisson(case.per_second, (runs, seconds))
    shares = [*case.shares, max(0.0, 1 - sum(case.shares))]  # not below 0 by rounding
    return rng.multinomial(arrivals, shares).cumsum(axis=1)


def step_verdict(case: Case, counts: np.ndarray, bounded: bool, steps: int = 1) -> str:
    """The step's outcome: the first poll that passes or fails it, else undecided. Unbounded,
    each poll is a fresh, only look at the full level (or the gate's way before it had a test):
    the rollout before cli.looks. Bounded,
    the step's fail side has its share of the level of a rollout of `steps` steps."""
    kept = StepLooks(steps=steps)
    polls = range(INTERVAL, len(counts) + 1, round(POLL_SECONDS))
    for second in polls:
        window = case.gate.window(counts[second - 1].astype(float))
        if bounded:
            verdict = overall(evaluate(window, case.gate.gates, 50, kept, second == polls[-1]))
        elif case.gate.before is not None:
            verdict = case.gate.before(window)
        else:
            verdict = overall(evaluate(window, case.gate.gates, 50, StepLooks(most=1), True))
        if verdict in (PASS, FAIL):
            return verdict
    return UNDECIDED


def outcomes(
    case: Case, runs: int, seed: int, bounded: bool, max_wait: int = MAX_WAIT
) -> Counter[str]:
    steps = counts_by_second(case, runs, seed, max_wait)
    return Counter(step_verdict(case, counts, bounded) for counts in steps)


def row(case: Case, runs: int, seed: int, max_wait: int) -> str:
    before = outcomes(case, runs, seed, False, max_wait)
    after = outcomes(case, runs, seed, True, max_wait)
    shares = [before[FAIL], before[PASS], after[FAIL], after[PASS], after[UNDECIDED]]
    figures = " | ".join(f"{share / runs:.1%}" for share in shares)
    return f"| {case.gate.name} | {case.truth} | {case.per_second:g} | {max_wait} | {figures} |"


def rollout_verdicts(case: Case, runs: int, seed: int, split: bool) -> np.ndarray:
    """(runs, STEPS): each step's verdict, every step judged on samples of its own at the
    case's rate, with the fail level split over the steps or (before) the full level each."""
    counts = counts_by_second(case, runs * STEPS, seed, MAX_WAIT)
    by_rollout = counts.reshape(runs, STEPS, *counts.shape[1:])
    steps = STEPS if split else 1
    return np.array(
        [[step_verdict(case, step, True, steps) for step in rollout] for rollout in by_rollout]
    )


def rollout_row(case: Case, runs: int, seed: int) -> str:
    """Share of rollouts some step fails (every step judged: what the level bounds) and share
    whose first step fails, before and after the split."""
    figures = []
    for split in (False, True):
        failed = rollout_verdicts(case, runs, seed, split) == FAIL
        figures += [failed.any(axis=1).mean(), failed[:, 0].mean()]
    cells = " | ".join(f"{share:.1%}" for share in figures)
    return f"| {case.gate.name} | {case.truth} | {case.per_second:g} | {cells} |"


def rollout_table(runs: int = ROLLOUT_RUNS, seed: int = 22) -> None:
    print(
        f"Rollout of {STEPS} steps, each as in the step table ({MAX_WAIT} s --max-wait) on "
        f"samples of its own, {runs} seeded rollouts per case"
    )
    print(
        "| gate | B | samples/s | per-step budgets: some step fails | first step fails "
        "| split: some step fails | first step fails |"
    )
    print("|---|---|--:|--:|--:|--:|--:|")
    for per_second in (20, 200):
        for case in cases(per_second):
            if case.gate is not FLIPS:  # the agreement rows' test on the same seeds
                print(rollout_row(case, runs, seed))


def step_table(runs: int = 2000, seed: int = 22) -> None:
    print(
        f"Rollout step: {INTERVAL} s soak, then --max-wait; a verdict every {POLL_SECONDS:g} s, "
        f"{NEED} samples needed, {runs} seeded runs per case"
    )
    print(
        "| gate | B | samples/s | --max-wait | every second: fail | pass "
        "| bounded looks: fail | pass | undecided |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for per_second in (20, 200):
        for case in cases(per_second):
            print(row(case, runs, seed, MAX_WAIT))
    for case in cases(20):
        if case.gate in (ERROR, AGREEMENT) and case.truth.startswith("at the limit"):
            print(row(case, runs, seed, LONG_WAIT))


def main(tables: list[str]) -> None:
    known = {"steps": step_table, "rollouts": rollout_table}
    unknown = [table for table in tables if table not in known]
    if unknown:
        raise SystemExit(f"unknown table {unknown[0]!r}: choose steps, rollouts or both")
    for table in tables or list(known):
        known[table]()


if __name__ == "__main__":
    main(sys.argv[1:])
