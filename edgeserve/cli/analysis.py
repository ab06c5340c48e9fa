"""The analysis behind `edgeserve admin rollout`: B against A over one step, gate by gate.

Pure functions over /metrics scrapes taken at the start of a step and now, summed over every
instance, so a unit test can prove each gate without a server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

from edgeserve.cli.looks import Looks, StepLooks
from edgeserve.cli.render import ms_cell, percent_cell
from edgeserve.cli.scrape import (
    VARIANTS,
    Scrape,
    compared_between,
    histogram_quantile,
    increase,
)
from edgeserve.traffic.binomial import at_least, at_most
from edgeserve.traffic.class_flips import flips
from edgeserve.traffic.mcnemar import paired_verdict
from edgeserve.traffic.paired_feedback import CORRECT, WRONG
from edgeserve.traffic.step_clients import ENOUGH
from edgeserve.variants import CANDIDATE, CURRENT

PASS, FAIL, WAIT, SKIP = "pass", "fail", "wait", "n/a"
INCONCLUSIVE = "inconclusive"
"""Enough samples, but they cannot yet tell B from the limit: more data may settle it."""
SLOW_SHARE = 0.05
"""The share of runs above a p95: B's p95 is within its limit when at most this share of B's
runs took longer than the limit."""


@dataclass(frozen=True)
class Gates:
    max_error_rate: float
    max_latency_ratio: float
    min_latency_delta_ms: float
    min_agreement: float | None
    min_accuracy_delta: float | None
    min_samples: int
    max_class_flips: dict[str, float] = field(default_factory=dict)
    """A's label -> the highest share of A's answers of it that B may change."""


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
    class_pairs: dict[tuple[str, str], float] = field(default_factory=dict)
    """(A's top-1, B's top-1) -> shadow comparisons in the step."""
    clients: float | None = None
    """Distinct sticky clients the instances met in the step (each counts up to 20)."""
    paired: dict[tuple[str, str], float] = field(default_factory=dict)
    """(A's outcome, B's outcome) -> feedback in the step on A answers B shadowed."""

    @property
    def b_share(self) -> float | None:
        """B's measured share of the step's requests (forced canary requests included)."""
        a, b = self.arms[CURRENT].requests, self.arms[CANDIDATE].requests
        return b / (a + b) if a + b else None


@dataclass(frozen=True)
class GateResult:
    gate: str
    outcome: str
    b: str
    a: str
    limit: str
    samples: str
    looks: str = ""
    """How many of the step's looks this gate has spent, for a gate tested by looks."""


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
        shadow = compared_between(before, after)  # every pair: a step serves one by design
        window.agree += shadow.agree
        window.compared += shadow.compared
        window.no_common_label += shadow.no_common_label
        for cell in after.paired:
            window.paired[cell] = window.paired.get(cell, 0.0) + _grew(
                before.paired, after.paired, cell
            )
        if after.clients is not None:
            window.clients = (window.clients or 0.0) + after.clients
        for pair in after.class_pairs:
            grown = _grew(before.class_pairs, after.class_pairs, pair)
            window.class_pairs[pair] = window.class_pairs.get(pair, 0.0) + grown
    for variant, arm in window.arms.items():
        # an edge only some instances export (a fleet mid-upgrade) would count only their runs
        exported = [
            set(after.run_buckets[variant]) for _, after in pairs if after.run_buckets.get(variant)
        ]
        if exported:
            common = set.intersection(*exported)
            arm.run_buckets = {edge: n for edge, n in arm.run_buckets.items() if edge in common}
    return window


def few_clients(window: StepWindow, b_percent: float) -> str | None:
    """Why B's measured share may be far from its weight: too few sticky clients, or None."""
    if window.clients is None or not 0 < window.clients < ENOUGH:
        return None
    return (
        f"only {window.clients:.0f} distinct clients in this step (fewer than {ENOUGH}): with "
        f"sticky assignment B's share follows the clients, not the weight (B served "
        f"{percent_cell(window.b_share)} of requests at weight {b_percent:g}%); "
        "--per-request assigns each request instead"
    )


def wilson(successes: float, n: float, z: float = 1.96) -> tuple[float, float] | None:
    """95 % Wilson score interval for a proportion; sound even near 0 % or 100 %."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def z_for(alpha: float) -> float:
    """The normal quantile whose upper tail is `alpha`: 1.645 for 5 %."""
    return NormalDist().inv_cdf(1 - alpha)


def shown_interval(
    successes: float, n: float, low_alpha: float, high_alpha: float
) -> tuple[float, float]:
    """A Wilson interval whose each end is at the level of the claim it would settle (pass and
    fail have different levels), for a gate that cannot tell yet."""
    low = (wilson(successes, n, z_for(low_alpha)) or (0.0, 1.0))[0]
    high = (wilson(successes, n, z_for(high_alpha)) or (0.0, 1.0))[1]
    return low, high


def difference_interval(b: Arm, a: Arm, alpha: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for B's accuracy minus A's, from two Wilson intervals
    (sound at a few dozen samples, where a normal interval on the difference is not); each
    side is exceeded with probability `alpha`."""
    z = z_for(alpha)
    b_low, b_high = wilson(b.correct, b.judged, z) or (0.0, 1.0)
    a_low, a_high = wilson(a.correct, a.judged, z) or (0.0, 1.0)
    b_rate, a_rate = b.accuracy or 0.0, a.accuracy or 0.0
    difference = b_rate - a_rate
    return (
        difference - math.hypot(b_rate - b_low, a_high - a_rate),
        difference + math.hypot(b_high - b_rate, a_rate - a_low),
    )


def accuracy_verdict(
    b: Arm, a: Arm, delta: float, alpha: float, fail_alpha: float | None = None
) -> str:
    """pass when B minus A is surely at least `delta`, fail when surely below, else inconclusive
    (pass at confidence 1 - `alpha`, fail at 1 - `fail_alpha`, by default the same)."""
    low = difference_interval(b, a, alpha)[0]
    high = difference_interval(b, a, alpha if fail_alpha is None else fail_alpha)[1]
    if low >= delta:
        return PASS
    return FAIL if high < delta else INCONCLUSIVE


def _accuracy(arm: Arm) -> str:
    interval = wilson(arm.correct, arm.judged)
    if interval is None:
        return "-"
    return f"{arm.accuracy:.1%} [{interval[0]:.0%}, {interval[1]:.0%}]"


def evaluate(
    window: StepWindow,
    gates: Gates,
    b_percent: float,
    looks: StepLooks | None = None,
    final: bool = False,
) -> list[GateResult]:
    """Each gate's outcome for this step; A is needed only while it still serves traffic.

    `looks` carries each gate's looks from one evaluation of the step to the next (fresh: this
    is the step's first); `final` marks the step's deadline, which may take a last look."""
    looks = looks or StepLooks()
    a, b = window.arms[CURRENT], window.arms[CANDIDATE]
    need = gates.min_samples
    a_serves = b_percent < 100
    results = [_error_gate(a, b, gates, need, looks.of("error rate"), final)]
    results.append(_latency_gate(a, b, gates, need, a_serves, looks.of("p95 inference"), final))
    if gates.min_agreement is not None:
        agreement = looks.of("shadow agreement")
        results.append(
            _agreement_gate(window, gates.min_agreement, need, a_serves, agreement, final)
        )
    if gates.min_accuracy_delta is not None:
        # paired or not, one decision: the two share the step's looks
        accuracy, delta = looks.of("accuracy"), gates.min_accuracy_delta
        if a_serves and sum(window.paired.values()) >= need:
            results.append(_paired_accuracy_gate(window.paired, delta, need, accuracy, final))
        else:
            results.append(_accuracy_gate(a, b, delta, need, a_serves, accuracy, final))
    for label, limit in gates.max_class_flips.items():
        flip_looks = looks.of(f"class flips {label}")
        results.append(_class_flip_gate(window, label, limit, need, a_serves, flip_looks, final))
    return results


def _spent(looks: Looks) -> str:
    return looks.describe() if looks.spent else ""


def _error_gate(a: Arm, b: Arm, gates: Gates, need: int, looks: Looks, final: bool) -> GateResult:
    limit = f"<= {gates.max_error_rate:.1%}"
    if b.requests < need:
        outcome = WAIT
    else:
        outcome = looks.judge(
            b.requests,
            final,
            lambda alpha, fail_alpha: exceeds_verdict(
                b.errors, b.requests, gates.max_error_rate, alpha, fail_alpha
            ),
        )
    if outcome == INCONCLUSIVE:
        low, high = shown_interval(b.errors, b.requests, looks.fail_alpha, looks.alpha)
        limit += f" (in [{low:.1%}, {high:.1%}])"
    return GateResult(
        "error rate",
        outcome,
        percent_cell(b.error_rate),
        percent_cell(a.error_rate),
        limit,
        f"{b.requests:.0f} / {need}",
        _spent(looks),
    )


def latency_limit(a_p95: float, gates: Gates) -> float:
    """The longest p95 B may have, in seconds: ratio x A's or the margin above it, whichever
    allows more (a B slower by the ratio alone, within the margin, is not worth stopping)."""
    return max(a_p95 * gates.max_latency_ratio, a_p95 + gates.min_latency_delta_ms / 1000)


def runs_above(buckets: dict[float, float], limit: float) -> tuple[float, float]:
    """B's runs surely slower than `limit` (above the first edge at or past it) and those that
    may be (above the last edge at or below it): the histogram cannot split a bucket."""
    runs = max(buckets.values(), default=0.0)  # the +Inf bucket's count
    edges = sorted(edge for edge in buckets if not math.isinf(edge))
    upper = [buckets[edge] for edge in edges if edge >= limit]
    lower = [buckets[edge] for edge in edges if edge <= limit]
    return runs - (upper[0] if upper else runs), runs - (lower[-1] if lower else 0.0)


def latency_verdict(
    buckets: dict[float, float], limit: float, alpha: float, fail_alpha: float
) -> str:
    """fail when significantly more than SLOW_SHARE of B's runs were surely slower than `limit`
    (B's p95 is surely above it), pass when significantly fewer than SLOW_SHARE may have been,
    else inconclusive: exact one-sided binomial tests on run counts, so the chance of a wrong
    verdict is bounded like the other gates' (a p95 against a p95 has no such bound)."""
    surely, maybe = runs_above(buckets, limit)
    runs = max(buckets.values(), default=0.0)
    if exceeds_verdict(surely, runs, SLOW_SHARE, alpha, fail_alpha) == FAIL:
        return FAIL
    if exceeds_verdict(maybe, runs, SLOW_SHARE, alpha, fail_alpha) == PASS:
        return PASS
    return INCONCLUSIVE


def _latency_gate(
    a: Arm, b: Arm, gates: Gates, need: int, a_serves: bool, looks: Looks, final: bool
) -> GateResult:
    limit = f"<= {gates.max_latency_ratio:g}x or +{gates.min_latency_delta_ms:g} ms"
    samples = f"{b.requests - b.errors:.0f}, {a.requests - a.errors:.0f} / {need}"
    if not a_serves:
        return GateResult("p95 inference", SKIP, ms_cell(b.p95, 2), "no traffic", limit, samples)
    answered = min(a.requests - a.errors, b.requests - b.errors)
    shown_b = ms_cell(b.p95, 2)
    if answered < need or a.p95 is None or b.p95 is None:
        outcome = WAIT
    else:
        # A's p95 is taken as measured: A serves most of a step's traffic (half at 50 %)
        longest = latency_limit(a.p95, gates)
        outcome = looks.judge(
            max(b.run_buckets.values()),
            final,
            lambda alpha, fail_alpha: latency_verdict(b.run_buckets, longest, alpha, fail_alpha),
        )
        surely = runs_above(b.run_buckets, longest)[0] / max(b.run_buckets.values())
        limit += f" = {ms_cell(longest, 2)}"
        shown_b += f" ({percent_cell(surely)} of runs surely slower)"
    return GateResult(
        "p95 inference",
        outcome,
        shown_b,
        ms_cell(a.p95, 2),
        limit,
        samples,
        _spent(looks),
    )


def _agreement_gate(
    window: StepWindow, minimum: float, need: int, a_serves: bool, looks: Looks, final: bool
) -> GateResult:
    share = window.agree / window.compared if window.compared else None
    broken = window.compared == 0 and window.no_common_label >= need
    if not a_serves:
        outcome = SKIP  # shadow mirrors A's traffic, and A has none
    elif broken:
        outcome = FAIL  # B could name none of A's answers: it is broken, not undecided
    elif window.compared < need:
        outcome = WAIT
    else:
        # agreement at least the minimum is disagreement at most its complement
        disagree = window.compared - window.agree
        outcome = looks.judge(
            window.compared,
            final,
            lambda alpha, fail_alpha: exceeds_verdict(
                disagree, window.compared, 1 - minimum, alpha, fail_alpha
            ),
        )
    limit = f">= {minimum:.1%}"
    if outcome == INCONCLUSIVE:
        low, high = shown_interval(window.agree, window.compared, looks.alpha, looks.fail_alpha)
        limit += f" (in [{low:.1%}, {high:.1%}])"
    return GateResult(
        "shadow agreement",
        outcome,
        "broken: no common label" if broken else percent_cell(share),
        "(A's answer)",
        limit,
        f"{window.compared:.0f} / {need}",
        _spent(looks),
    )


def _accuracy_gate(
    a: Arm, b: Arm, delta: float, need: int, a_serves: bool, looks: Looks, final: bool
) -> GateResult:
    samples = f"{b.judged:.0f}, {a.judged:.0f} / {need}"
    limit = f"B - A >= {delta:+.1%}"
    if a.judged + b.judged == 0 or not a_serves:
        outcome = SKIP  # no feedback flows (or no A to compare with)
    elif min(a.judged, b.judged) < need:
        outcome = WAIT
    else:
        outcome = looks.judge(
            min(a.judged, b.judged),
            final,
            lambda alpha, fail_alpha: accuracy_verdict(b, a, delta, alpha, fail_alpha),
        )
    low, high = (0.0, 0.0)
    if outcome != SKIP:
        low = difference_interval(b, a, looks.alpha)[0]
        high = difference_interval(b, a, looks.fail_alpha)[1]
    shown = f"{limit} (B - A in [{low:+.1%}, {high:+.1%}])" if outcome == INCONCLUSIVE else limit
    return GateResult(
        "accuracy (feedback)", outcome, _accuracy(b), _accuracy(a), shown, samples, _spent(looks)
    )


def exceeds_verdict(
    hits: float, n: float, limit: float, alpha: float, fail_alpha: float | None = None
) -> str:
    """fail when the share of hits is significantly above `limit`, pass when significantly at
    most it, else inconclusive: one-sided exact binomial tests, pass at level `alpha`, fail at
    `fail_alpha` (by default the same); a Wilson interval claims a rare error rate above its
    limit more often than its level says."""
    hits, n = round(hits), round(n)
    if at_least(hits, n, limit) <= (alpha if fail_alpha is None else fail_alpha):
        return FAIL
    if limit >= 1 or at_most(hits, n, limit) <= alpha:
        return PASS
    return INCONCLUSIVE


def _class_flip_gate(
    window: StepWindow,
    label: str,
    limit: float,
    need: int,
    a_serves: bool,
    looks: Looks,
    final: bool,
) -> GateResult:
    changed, compared = flips(window.class_pairs, label)
    if not a_serves:
        outcome = SKIP  # shadow mirrors A's traffic, and A has none
    elif compared < need:
        outcome = WAIT
    else:
        outcome = looks.judge(
            compared,
            final,
            lambda alpha, fail_alpha: exceeds_verdict(changed, compared, limit, alpha, fail_alpha),
        )
    share = changed / compared if compared else None
    return GateResult(
        f"class flips {label}",
        outcome,
        f"{percent_cell(share)} ({changed:.0f} of {compared:.0f})",
        "(A's answer)",
        f"<= {limit:.1%}",
        f"{compared:.0f} / {need}",
        _spent(looks),
    )


def _paired_accuracy_gate(
    paired: dict[tuple[str, str], float], delta: float, need: int, looks: Looks, final: bool
) -> GateResult:
    """B against A on the same inputs: feedback on A answers that B answered in shadow."""
    b_only, a_only = round(paired.get((WRONG, CORRECT), 0)), round(paired.get((CORRECT, WRONG), 0))
    pairs = round(sum(paired.values()))
    outcome = looks.judge(
        pairs,
        final,
        lambda alpha, fail_alpha: paired_verdict(b_only, a_only, pairs, delta, alpha, fail_alpha),
    )
    return GateResult(
        "accuracy (paired)",
        outcome,
        f"only B right {b_only}",
        f"only A right {a_only}",
        f"B - A >= {delta:+.1%} (measured {(b_only - a_only) / pairs:+.1%})",
        f"{pairs} pairs / {need}",
        _spent(looks),
    )


def overall(results: list[GateResult]) -> str:
    """fail if any gate failed, else wait if any lacks samples, else inconclusive if any cannot
    tell yet, else pass."""
    outcomes = {r.outcome for r in results}
    for outcome in (FAIL, WAIT, INCONCLUSIVE):
        if outcome in outcomes:
            return outcome
    return PASS


def failure_reason(results: list[GateResult], b_percent: float, outcome: str = FAIL) -> str:
    failed = [r for r in results if r.outcome == outcome]
    parts = [
        f"{r.gate} B {r.b} vs A {r.a}, limit {r.limit}" + (f" ({r.looks})" if r.looks else "")
        for r in failed
    ]
    return f"admin rollout stopped at B {b_percent:g}%: " + "; ".join(parts)
