"""The analysis behind `edgeserve admin rollout`: B against A over one step, gate by gate.

Pure functions over /metrics scrapes taken at the start of a step and now, summed over every
instance, so a unit test can prove each gate without a server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edgeserve.cli.render import ms_cell, percent_cell
from edgeserve.cli.scrape import VARIANTS, Scrape, histogram_quantile, increase
from edgeserve.variants import CANDIDATE, CURRENT

PASS, FAIL, WAIT, SKIP = "pass", "fail", "wait", "n/a"


@dataclass(frozen=True)
class Gates:
    max_error_rate: float
    max_latency_ratio: float
    min_latency_delta_ms: float
    min_agreement: float | None
    min_accuracy_delta: float | None
    min_samples: int


@dataclass
class Arm:
    """What one variant did during the step, summed over instances."""

    requests: float = 0.0
    errors: float = 0.0
    run_buckets: dict[float, float] = field(default_factory=dict)
    correct: float = 0.0
    judged: float = 0.0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def p95(self) -> float | None:
        """p95 of the model-run time (decoding excluded: a client cannot move it)."""
        return histogram_quantile(0.95, self.run_buckets)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.judged if self.judged else None


@dataclass
class StepWindow:
    arms: dict[str, Arm] = field(default_factory=lambda: {v: Arm() for v in VARIANTS})
    agree: float = 0.0
    compared: float = 0.0
    """agree + disagree: the comparisons with a verdict (scrape.ShadowCounts' definition)."""
    no_common_label: float = 0.0


@dataclass(frozen=True)
class GateResult:
    gate: str
    outcome: str
    b: str
    a: str
    limit: str
    samples: str


def _grew(before: dict, after: dict, key: object) -> float:
    return increase(before.get(key, 0.0), after.get(key, 0.0))


def step_window(pairs: list[tuple[Scrape, Scrape]]) -> StepWindow:
    """Counter increases between each instance's two scrapes, summed (a restart counts from 0)."""
    window = StepWindow()
    for before, after in pairs:
        for variant, arm in window.arms.items():
            for outcome in ("ok", "error"):
                grown = _grew(before.requests, after.requests, (variant, outcome))
                arm.requests += grown
                arm.errors += grown if outcome == "error" else 0.0
            earlier = before.run_buckets.get(variant, {})
            for bound, count in after.run_buckets.get(variant, {}).items():
                grown = increase(earlier.get(bound, 0.0), count)
                arm.run_buckets[bound] = arm.run_buckets.get(bound, 0.0) + grown
            correct = _grew(before.feedback, after.feedback, (variant, "correct"))
            arm.correct += correct
            arm.judged += correct + _grew(before.feedback, after.feedback, (variant, "wrong"))
        agree = _grew(before.shadow, after.shadow, "agree")
        window.agree += agree
        window.compared += agree + _grew(before.shadow, after.shadow, "disagree")
        window.no_common_label += _grew(before.shadow, after.shadow, "no_common_label")
    return window


def wilson(successes: float, n: float, z: float = 1.96) -> tuple[float, float] | None:
    """95 % Wilson score interval for a proportion; sound even near 0 % or 100 %."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _accuracy(arm: Arm) -> str:
    interval = wilson(arm.correct, arm.judged)
    if interval is None:
        return "-"
    return f"{arm.accuracy:.1%} [{interval[0]:.0%}, {interval[1]:.0%}]"


def evaluate(window: StepWindow, gates: Gates, b_percent: float) -> list[GateResult]:
    """Each gate's outcome for this step; A is needed only while it still serves traffic."""
    a, b = window.arms[CURRENT], window.arms[CANDIDATE]
    need = gates.min_samples
    a_serves = b_percent < 100
    results = [_error_gate(a, b, gates, need)]
    results.append(_latency_gate(a, b, gates, need, a_serves))
    if gates.min_agreement is not None:
        results.append(_agreement_gate(window, gates.min_agreement, need, a_serves))
    if gates.min_accuracy_delta is not None:
        results.append(_accuracy_gate(a, b, gates.min_accuracy_delta, need, a_serves))
    return results


def _error_gate(a: Arm, b: Arm, gates: Gates, need: int) -> GateResult:
    if b.requests < need:
        outcome = WAIT
    else:
        outcome = PASS if (b.error_rate or 0.0) <= gates.max_error_rate else FAIL
    return GateResult(
        "error rate",
        outcome,
        percent_cell(b.error_rate),
        percent_cell(a.error_rate),
        f"<= {gates.max_error_rate:.1%}",
        f"{b.requests:.0f} / {need}",
    )


def _latency_gate(a: Arm, b: Arm, gates: Gates, need: int, a_serves: bool) -> GateResult:
    limit = f"<= {gates.max_latency_ratio:g}x or +{gates.min_latency_delta_ms:g} ms"
    samples = f"{b.requests - b.errors:.0f}, {a.requests - a.errors:.0f} / {need}"
    if not a_serves:
        return GateResult("p95 inference", SKIP, ms_cell(b.p95, 2), "no traffic", limit, samples)
    answered = min(a.requests - a.errors, b.requests - b.errors)
    if answered < need or a.p95 is None or b.p95 is None:
        outcome = WAIT
    else:
        slower = b.p95 > a.p95 * gates.max_latency_ratio
        beyond_margin = (b.p95 - a.p95) * 1000 > gates.min_latency_delta_ms
        outcome = FAIL if slower and beyond_margin else PASS
    return GateResult(
        "p95 inference", outcome, ms_cell(b.p95, 2), ms_cell(a.p95, 2), limit, samples
    )


def _agreement_gate(window: StepWindow, minimum: float, need: int, a_serves: bool) -> GateResult:
    share = window.agree / window.compared if window.compared else None
    broken = window.compared == 0 and window.no_common_label >= need
    if not a_serves:
        outcome = SKIP  # shadow mirrors A's traffic, and A has none
    elif broken:
        outcome = FAIL  # B could name none of A's answers: it is broken, not undecided
    elif window.compared < need:
        outcome = WAIT
    else:
        outcome = PASS if (share or 0.0) >= minimum else FAIL
    return GateResult(
        "shadow agreement",
        outcome,
        "broken: no common label" if broken else percent_cell(share),
        "(A's answer)",
        f">= {minimum:.1%}",
        f"{window.compared:.0f} / {need}",
    )


def _accuracy_gate(a: Arm, b: Arm, delta: float, need: int, a_serves: bool) -> GateResult:
    samples = f"{b.judged:.0f}, {a.judged:.0f} / {need}"
    limit = f"B - A >= {delta:+.1%}"
    if a.judged + b.judged == 0 or not a_serves:
        outcome = SKIP  # no feedback flows (or no A to compare with)
    elif min(a.judged, b.judged) < need or a.accuracy is None or b.accuracy is None:
        outcome = WAIT
    else:
        outcome = PASS if b.accuracy - a.accuracy >= delta else FAIL
    return GateResult("accuracy (feedback)", outcome, _accuracy(b), _accuracy(a), limit, samples)


def overall(results: list[GateResult]) -> str:
    """fail if any gate failed, else wait if any lacks samples, else pass."""
    outcomes = {r.outcome for r in results}
    if FAIL in outcomes:
        return FAIL
    return WAIT if WAIT in outcomes else PASS


def failure_reason(results: list[GateResult], b_percent: float) -> str:
    failed = [r for r in results if r.outcome == FAIL]
    parts = [f"{r.gate} B {r.b} vs A {r.a}, limit {r.limit}" for r in failed]
    return f"admin rollout stopped at B {b_percent:g}%: " + "; ".join(parts)
