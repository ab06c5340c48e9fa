"""A seeded Monte Carlo run of the canary guard's own code: how often it is wrong, how fast right.

Each run feeds one `CanaryGuard` a stream of requests (arm drawn by the split, failure drawn by
the arm's rate, run time log-normal around the arm's median, one input size) and asks for a
verdict after every B request, as the server does. `python -m edgeserve.traffic.simulation`
(`make simulate`) prints the table the runbook quotes (docs/operations.md, 3a).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from multiprocessing.pool import Pool

import numpy as np

from edgeserve.traffic.canary import CanaryGuard, GuardLimits

LIMITS = GuardLimits(window=200, min_samples=20, max_error_rate=0.05, max_latency_ratio=2.0)
"""The settings' defaults."""
MEDIAN_SECONDS = 0.010
SPREAD = 0.3
"""Sigma of log run time: a p95 about 1.6x the median."""


@dataclass(frozen=True)
class Case:
    name: str
    share_b: float
    a_failure: float
    b_failure: float
    b_slowdown: float = 1.0


@dataclass(frozen=True)
class Result:
    rollbacks: int
    runs: int
    b_requests_to_rollback: list[int]


def run_once(case: Case, requests: int, seed: int) -> tuple[str | None, int]:
    """(the verdict or None, B requests served until it) for one seeded stream."""
    rng = np.random.default_rng(seed)
    is_b = (rng.random(requests) < case.share_b).tolist()
    draws = rng.random(requests).tolist()
    seconds = (MEDIAN_SECONDS * np.exp(SPREAD * rng.standard_normal(requests))).tolist()
    guard = CanaryGuard(LIMITS)
    b_served = 0
    for index in range(requests):
        variant = "B" if is_b[index] else "A"
        ok = draws[index] >= (case.b_failure if is_b[index] else case.a_failure)
        run = seconds[index] * (case.b_slowdown if is_b[index] else 1.0)
        guard.record(variant, 0, ok, run if ok else 0.0, float(index))
        if variant == "A" and not guard.failure_run_due():
            continue
        b_served += is_b[index]
        verdict = guard.verdict()
        if verdict is not None:
            return verdict, b_served
    return None, b_served


def simulate(
    case: Case, runs: int, requests: int, seed: int = 0, pool: Pool | None = None
) -> Result:
    """`runs` seeded runs of `requests` each, on `pool`'s processes when given."""
    jobs = [(case, requests, seed * 100_003 + run) for run in range(runs)]
    outcomes = pool.starmap(run_once, jobs) if pool else [run_once(*job) for job in jobs]
    return Result(
        rollbacks=sum(verdict is not None for verdict, _ in outcomes),
        runs=runs,
        b_requests_to_rollback=[served for verdict, served in outcomes if verdict is not None],
    )


def identical(rate: float, share_b: float) -> Case:
    return Case(f"identical, {rate:.0%} failures, B at {share_b:.0%}", share_b, rate, rate)


CASES_SAME = [identical(rate, share) for rate in (0.01, 0.02, 0.03, 0.05) for share in (0.5, 0.1)]
CASES_WORSE = [
    Case(f"B fails 4%, A 1%, B at {share:.0%}", share, 0.01, 0.04) for share in (0.5, 0.1)
]
CASES_SLOWER = [
    Case(f"B 3x slower, B at {share:.0%}", share, 0.0, 0.0, b_slowdown=3.0) for share in (0.5, 0.1)
]


def main(runs: int = 200, requests: int = 100_000) -> None:
    print("| case | runs x requests | rolled back | B requests to rollback (median, max) |")
    print("|---|--:|--:|--:|")
    cases = (
        [(case, requests) for case in CASES_SAME]
        # twice the requests that bring B 10,000 on average, so a run can show B is not out yet
        + [(case, round(20_000 / case.share_b)) for case in CASES_WORSE]
        + [(case, 5_000) for case in CASES_SLOWER]
    )
    with Pool(os.cpu_count()) as pool:
        for case, length in cases:
            print(row(case, simulate(case, runs, length, pool=pool), length), flush=True)


def row(case: Case, result: Result, requests: int) -> str:
    served = sorted(result.b_requests_to_rollback)
    shown = f"{served[len(served) // 2]}, {served[-1]}" if served else "-"
    return f"| {case.name} | {result.runs} x {requests:,} | {result.rollbacks} | {shown} |"


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
