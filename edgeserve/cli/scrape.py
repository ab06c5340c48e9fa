"""Read /metrics into the numbers `edgeserve status` shows: rates from two scrapes, quantiles."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from edgeserve.variants import VARIANTS


@dataclass
class Scrape:
    """The counters and gauges of one /metrics read, at one moment (monotonic seconds)."""

    at: float
    requests: dict[tuple[str, str], float] = field(default_factory=dict)
    """(variant, outcome) -> inferences so far."""
    buckets: dict[str, dict[float, float]] = field(default_factory=lambda: defaultdict(dict))
    """variant -> {upper bound: cumulative count} of the total-latency histogram."""
    run_buckets: dict[str, dict[float, float]] = field(default_factory=lambda: defaultdict(dict))
    """variant -> {upper bound: cumulative count} of the model-run (inference stage) histogram."""
    shadow: dict[str, float] = field(default_factory=dict)
    """agree / disagree -> comparisons so far."""
    class_pairs: dict[tuple[str, str], float] = field(default_factory=dict)
    """(A's top-1 label, B's top-1 label) -> shadow comparisons so far."""
    paired: dict[tuple[str, str], float] = field(default_factory=dict)
    """(A's outcome, B's outcome) -> feedback on shadowed A answers so far."""
    feedback: dict[tuple[str, str], float] = field(default_factory=dict)
    """(variant, correct / wrong) -> feedback counted so far."""
    weights: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    generation: int | None = None
    rollbacks: float = 0.0
    clients: float | None = None
    """Distinct sticky clients since the weights last changed (counted up to 20)."""


def parse(text: str, at: float) -> Scrape:
    """A Scrape from Prometheus exposition text; unknown series are ignored."""
    # Imported here, not at the top: prometheus-client picks where metrics live when it is first
    # imported, and `edgeserve serve` must set PROMETHEUS_MULTIPROC_DIR before that happens.
    from prometheus_client.parser import text_string_to_metric_families

    scrape = Scrape(at=at)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            variant = labels.get("variant", "")
            if name == "edgeserve_inferences_total":
                key = (variant, labels.get("outcome", ""))
                scrape.requests[key] = scrape.requests.get(key, 0.0) + value
            elif name == "edgeserve_inference_duration_seconds_bucket":
                if labels.get("stage") == "total":
                    scrape.buckets[variant][float(labels["le"])] = value
                elif labels.get("stage") == "inference":
                    scrape.run_buckets[variant][float(labels["le"])] = value
            elif name == "edgeserve_feedback_total":
                scrape.feedback[(variant, labels.get("outcome", ""))] = value
            elif name == "edgeserve_shadow_comparisons_total":
                scrape.shadow[labels.get("result", "")] = value
            elif name == "edgeserve_shadow_class_pairs_total":
                scrape.class_pairs[(labels.get("a_label", ""), labels.get("b_label", ""))] = value
            elif name == "edgeserve_ab_weight":
                scrape.weights[variant] = value
            elif name == "edgeserve_model_info" and value == 1:
                scrape.models[variant] = f"{labels.get('name')} {labels.get('version')}"
            elif name == "edgeserve_state_generation":
                scrape.generation = int(value)
            elif name == "edgeserve_canary_rollbacks_total":
                scrape.rollbacks = value
            elif name == "edgeserve_feedback_paired_total":
                scrape.paired[(labels.get("a_outcome", ""), labels.get("b_outcome", ""))] = value
            elif name == "edgeserve_step_clients":
                scrape.clients = value
    return scrape


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile on cumulative bucket counts; None without observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):  # beyond the last finite bucket: its bound is the best guess
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass(frozen=True)
class VariantView:
    """One row of the status view."""

    variant: str
    model: str | None
    weight: float | None
    traffic: float | None
    requests: float
    """Inferences served in the window (since the start without a first scrape)."""
    rps: float | None
    error_rate: float | None
    p50: float | None
    p95: float | None


def _served(scrape: Scrape | None, variant: str) -> tuple[float, float]:
    """(all, errors) a variant has served so far."""
    if scrape is None:
        return 0.0, 0.0
    total = errors = 0.0
    for (served_by, outcome), value in scrape.requests.items():
        if served_by == variant:
            total += value
            errors += value if outcome == "error" else 0.0
    return total, errors


def _window(before: Scrape | None, after: Scrape, variant: str) -> tuple[float, float]:
    """(all, errors) served by a variant between two scrapes; a restart counts from zero."""
    (total_before, errors_before), (total, errors) = (
        _served(before, variant),
        _served(after, variant),
    )
    return increase(total_before, total), increase(errors_before, errors)


def increase(before: float, after: float) -> float:
    """Counter increase; a smaller value means the server restarted and counted from zero."""
    return after - before if after >= before else after


def variant_views(before: Scrape | None, after: Scrape) -> list[VariantView]:
    """Figures over the window between two scrapes (since the start without `before`)."""
    seconds = after.at - before.at if before is not None else 0.0
    served = {v: _window(before, after, v) for v in VARIANTS}
    total = sum(count for count, _ in served.values())
    views = []
    for variant in VARIANTS:
        if variant not in after.models and variant not in after.weights:
            continue
        count, errors = served[variant]
        earlier = before.buckets.get(variant, {}) if before is not None else {}
        window = {
            bound: increase(earlier.get(bound, 0.0), n)
            for bound, n in after.buckets.get(variant, {}).items()
        }
        views.append(
            VariantView(
                variant=variant,
                model=after.models.get(variant),
                weight=after.weights.get(variant),
                traffic=count / total if total else None,
                requests=count,
                rps=count / seconds if seconds > 0 else None,
                error_rate=errors / count if count else None,
                p50=histogram_quantile(0.5, window),
                p95=histogram_quantile(0.95, window),
            )
        )
    return views


@dataclass(frozen=True)
class ShadowCounts:
    """The three outcomes of shadow comparisons, and the one definition of agreement that the
    status, the rollout gate, the recording rule and the dashboard share."""

    agree: int
    disagree: int
    no_common_label: int

    @property
    def compared(self) -> int:
        """Comparisons with a verdict: B could name A's answer."""
        return self.agree + self.disagree

    @property
    def agreement(self) -> float | None:
        """agree / (agree + disagree); None without a comparison that has a verdict."""
        return self.agree / self.compared if self.compared else None

    @property
    def no_common_label_share(self) -> float | None:
        """Share of all comparisons where B has no label of A's answer."""
        total = self.compared + self.no_common_label
        return self.no_common_label / total if total else None

    @property
    def broken(self) -> bool:
        """Every comparison had no common label: B cannot name any of A's answers."""
        return self.no_common_label > 0 and self.compared == 0


def shadow_counts(after: Scrape, before: Scrape | None = None) -> ShadowCounts:
    """The shadow comparisons of the window (since the start without `before`)."""
    earlier = before.shadow if before is not None else {}
    agree, disagree, no_common = (
        int(increase(earlier.get(result, 0.0), after.shadow.get(result, 0.0)))
        for result in ("agree", "disagree", "no_common_label")
    )
    return ShadowCounts(agree, disagree, no_common)
