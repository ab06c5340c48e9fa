"""Read /metrics into the numbers `edgeserve status` shows: rates from two scrapes, quantiles."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from edgeserve.traffic.compare import AGREE, DISAGREE, NO_COMMON_LABEL
from edgeserve.variants import CANDIDATE, CURRENT, VARIANTS

Row = tuple[str, str]
"""A status row's key: the variant (slot) and the model version that served in it."""
Pair = tuple[str, str]
"""A's version and B's version, as a shadow comparison names them."""


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
    shadow: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """(A's version, B's version, agree / disagree / no_common_label) -> comparisons so far."""
    class_pairs: dict[tuple[str, str], float] = field(default_factory=dict)
    """(A's top-1 label, B's top-1 label) -> shadow comparisons so far, every B version summed
    (a step serves one)."""
    paired: dict[tuple[str, str], float] = field(default_factory=dict)
    """(A's outcome, B's outcome) -> feedback on shadowed A answers so far."""
    feedback: dict[tuple[str, str], float] = field(default_factory=dict)
    """(variant, correct / wrong) -> feedback counted so far."""
    by_version: dict[Row, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    """(variant, model version) -> {ok / error: inferences, correct / wrong: feedback}."""
    version_buckets: dict[Row, dict[float, float]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    """(variant, model version) -> {upper bound: cumulative count} of total latency."""
    weights: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    """variant -> the model its slot serves now, as "name version"."""
    names: dict[str, str] = field(default_factory=dict)
    """model version -> its model's name, for every version the server shows."""
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
            row = (variant, labels.get("model_version", ""))
            if name == "edgeserve_inferences_total":
                _add(scrape.requests, (variant, labels.get("outcome", "")), value)
                _add(scrape.by_version[row], labels.get("outcome", ""), value)
            elif name == "edgeserve_inference_duration_seconds_bucket":
                bound = float(labels["le"])
                if labels.get("stage") == "total":
                    _add(scrape.buckets[variant], bound, value)
                    _add(scrape.version_buckets[row], bound, value)
                elif labels.get("stage") == "inference":
                    _add(scrape.run_buckets[variant], bound, value)
            elif name == "edgeserve_feedback_total":
                _add(scrape.feedback, (variant, labels.get("outcome", "")), value)
                _add(scrape.by_version[row], labels.get("outcome", ""), value)
            elif name == "edgeserve_shadow_comparisons_total":
                _add(scrape.shadow, shadow_key(labels), value)
            elif name == "edgeserve_shadow_class_pairs_total":
                cell = (labels.get("a_label", ""), labels.get("b_label", ""))
                _add(scrape.class_pairs, cell, value)
            elif name == "edgeserve_ab_weight":
                scrape.weights[variant] = value
            elif name == "edgeserve_model_info":
                scrape.names[labels.get("version", "")] = labels.get("name", "")
                if value == 1:
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


def shadow_key(labels: dict[str, str]) -> tuple[str, str, str]:
    """The key of a shadow comparison series in Scrape.shadow."""
    return labels.get("a_version", ""), labels.get("b_version", ""), labels.get("result", "")


def _add(counts: dict, key: object, value: float) -> None:
    """Sum samples that differ only in a label the figure does not keep (a version, a worker)."""
    counts[key] = counts.get(key, 0.0) + value


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
    """One row of the status view: a slot and a model version that served in it."""

    variant: str
    version: str
    model: str | None
    """"name version", marked "(earlier)" for a version the slot no longer serves."""
    weight: float | None
    """The slot's weight, on the row of the version it serves now."""
    traffic: float | None
    requests: float
    """Inferences served in the window (since the start without a first scrape)."""
    rps: float | None
    error_rate: float | None
    p50: float | None
    p95: float | None


def _served(scrape: Scrape | None, row: Row) -> tuple[float, float]:
    """(all, errors) a version has served in a slot so far."""
    counts = scrape.by_version.get(row, {}) if scrape is not None else {}
    errors = counts.get("error", 0.0)
    return counts.get("ok", 0.0) + errors, errors


def _window(before: Scrape | None, after: Scrape, row: Row) -> tuple[float, float]:
    """(all, errors) served by a row between two scrapes; a restart counts from zero."""
    (total_before, errors_before), (total, errors) = (_served(before, row), _served(after, row))
    return increase(total_before, total), increase(errors_before, errors)


def increase(before: float, after: float) -> float:
    """Counter increase; a smaller value means the server restarted and counted from zero."""
    return after - before if after >= before else after


def current_version(after: Scrape, variant: str) -> str:
    """The version the slot serves now, from edgeserve_model_info; "" for an empty slot."""
    model = after.models.get(variant)
    return model.rsplit(" ", 1)[-1] if model else ""


def rows(after: Scrape) -> list[Row]:
    """The rows to show, by slot: the version it serves (or "" when empty) first, then those
    that served in it earlier (the server keeps the versions in A and B and the previous A)."""
    shown = [v for v in VARIANTS if v in after.models or v in after.weights]
    keys = {(variant, version) for variant, version in after.by_version if variant in shown}
    keys |= {(variant, current_version(after, variant)) for variant in shown}
    return sorted(keys, key=lambda row: (row[0], row[1] != current_version(after, row[0]), row[1]))


def variant_views(before: Scrape | None, after: Scrape) -> list[VariantView]:
    """Figures per slot and version over the window between two scrapes (since the start
    without `before`)."""
    seconds = after.at - before.at if before is not None else 0.0
    keys = rows(after)
    served = {row: _window(before, after, row) for row in keys}
    total = sum(count for count, _ in served.values())
    views = []
    for row in keys:
        variant, version = row
        count, errors = served[row]
        current = version == current_version(after, variant)
        earlier = before.version_buckets.get(row, {}) if before is not None else {}
        window = {
            bound: increase(earlier.get(bound, 0.0), n)
            for bound, n in after.version_buckets.get(row, {}).items()
        }
        name = after.names.get(version, "?")
        views.append(
            VariantView(
                variant=variant,
                version=version,
                model=after.models.get(variant) if current else f"{name} {version} (earlier)",
                weight=after.weights.get(variant) if current else None,
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


def compared_between(
    before: Scrape | None, after: Scrape, pair: Pair | None = None
) -> ShadowCounts:
    """The shadow comparisons between two scrapes (since the start without `before`), of every
    pair of versions or only of `pair`. Each series grows on its own, so a pair that started
    in between counts from zero and one that left drops out, instead of its total."""
    earlier = before.shadow if before is not None else {}
    grown = dict.fromkeys((AGREE, DISAGREE, NO_COMMON_LABEL), 0.0)
    for key, value in after.shadow.items():
        *versions, result = key
        if result in grown and (pair is None or tuple(versions) == pair):
            grown[result] += increase(earlier.get(key, 0.0), value)
    return ShadowCounts(int(grown[AGREE]), int(grown[DISAGREE]), int(grown[NO_COMMON_LABEL]))


def served_pair(after: Scrape) -> Pair:
    """The versions A and B serve now ("" for an empty slot): the pair status shows."""
    return current_version(after, CURRENT), current_version(after, CANDIDATE)


def shadow_counts(after: Scrape, before: Scrape | None = None) -> ShadowCounts:
    """The shadow comparisons in the window of the A and B served now, never of a pair that
    served before them."""
    return compared_between(before, after, served_pair(after))
