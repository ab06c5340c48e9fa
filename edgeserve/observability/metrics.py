"""Prometheus metrics. Import only after PROMETHEUS_MULTIPROC_DIR is set (see server/serve.py)."""

from __future__ import annotations

import os
import platform
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import onnxruntime
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    generate_latest,
    multiprocess,
)

from edgeserve import __version__
from edgeserve.variants import VARIANTS, share

if TYPE_CHECKING:
    from edgeserve.state.schema import RuntimeState

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
RUN_BUCKETS = (
    0.0005, 0.00063, 0.0008,
    0.001, 0.00125, 0.0016, 0.002, 0.0025, 0.00315, 0.004, 0.005, 0.0063, 0.008,
    0.01, 0.0125, 0.016, 0.02, 0.025, 0.0315, 0.04, 0.05, 0.063, 0.08,
    0.1, 0.125, 0.16, 0.2, 0.25, 0.315, 0.4, 0.5, 0.63, 0.8,
    1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0,
)  # fmt: skip
"""Per-variant stage times: the R10 series (x1.26 a step, LATENCY_BUCKETS' edges among them),
fine enough for the rollout's latency gate, which counts B's runs above the first edge past its
limit: with edges 2 to 2.5x apart a 2x slower B hardly ever had 5 % of its runs past that edge."""
BODY_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
RATIO_BUCKETS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.99, 1.0)
SCORE_DELTA_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)

http_requests = Counter(
    "edgeserve_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
http_request_duration = Histogram(
    "edgeserve_http_request_duration_seconds",
    "Time from request start to response, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
request_body_bytes = Histogram(
    "edgeserve_request_body_bytes",
    "Size of request bodies that were read.",
    ["route"],
    buckets=BODY_BUCKETS,
)
VERSION_LABEL = "model_version"
"""The 12-character version of the model that answered, on the variant metrics."""

inferences = Counter(
    "edgeserve_inferences_total",
    "Inference requests served per variant and model version, by outcome (ok or error).",
    ["variant", VERSION_LABEL, "outcome"],
)
inference_duration = Histogram(
    "edgeserve_inference_duration_seconds",
    "Time spent per variant, model version and stage (decode, inference, total).",
    ["variant", VERSION_LABEL, "stage"],
    buckets=RUN_BUCKETS,
)
PAIR_LABELS = ("a_version", "b_version")
"""The versions of A and B that a shadow comparison compared, on the shadow metrics."""

shadow_comparisons = Counter(
    "edgeserve_shadow_comparisons_total",
    "Shadow runs of B compared with A's answer by top-1, per pair of A and B versions: agree, "
    "disagree, no_common_label.",
    [*PAIR_LABELS, "result"],
)
shadow_topk_overlap = Histogram(
    "edgeserve_shadow_topk_overlap",
    "Share of A's top-k labels also in B's top-k, per shadow comparison and pair of versions.",
    PAIR_LABELS,
    buckets=RATIO_BUCKETS,
)
shadow_score_delta = Histogram(
    "edgeserve_shadow_score_delta",
    "Absolute difference between A's and B's top-1 scores, per shadow comparison and pair of "
    "versions.",
    PAIR_LABELS,
    buckets=SCORE_DELTA_BUCKETS,
)
shadow_class_pairs = Counter(
    "edgeserve_shadow_class_pairs_total",
    "Shadow comparisons by A's and B's top-1 labels, per B version: the 20 labels A answered "
    "most before that B started each by name, every other one as 'other'.",
    ["a_label", "b_label", "b_version"],
)
shadow_dropped = Counter(
    "edgeserve_shadow_dropped_total",
    "Shadow runs not started because the in-flight cap was reached.",
)
shadow_errors = Counter("edgeserve_shadow_errors_total", "Shadow runs on B that failed.")
disagreement_captures = Counter(
    "edgeserve_disagreement_captures_total",
    "Shadow disagreements offered for capture (CAPTURE_DISAGREEMENTS), by outcome: kept, "
    "too_large (over the byte cap alone), dropped (the writer was busy), failed (the folder).",
    ["outcome"],
)
connections_closed = Counter(
    "edgeserve_connections_closed_total",
    "Connections the server closed itself, by reason (request_timeout, idle_at_cap, "
    "refused_at_cap).",
    ["reason"],
)
worker_restarts = Counter(
    "edgeserve_worker_restarts_total",
    "Worker processes that died and were replaced by the main process.",
)
rate_limited = Counter(
    "edgeserve_rate_limited_total",
    "Requests refused with 429 by the per-client token bucket, by route template.",
    ["route"],
)
admin_auth_failures = Counter(
    "edgeserve_admin_auth_failures_total",
    "Admin requests with a missing or wrong bearer token.",
)
admin_lockouts = Counter(
    "edgeserve_admin_lockouts_total",
    "Waits started for a client address after repeated wrong admin tokens (per worker).",
)
canary_rollbacks = Counter(
    "edgeserve_canary_rollbacks_total",
    "Times the canary guard set B's weight to 0.",
)
feedback = Counter(
    "edgeserve_feedback_total",
    "Ground-truth feedback counted per variant and the model version that answered, by "
    "outcome (correct or wrong top-1).",
    ["variant", VERSION_LABEL, "outcome"],
)
feedback_paired = Counter(
    "edgeserve_feedback_paired_total",
    "Feedback on A answers that B also answered in shadow: whether each was right "
    "(correct or wrong), for the paired accuracy gate.",
    ["a_outcome", "b_outcome"],
)
paired_store_errors = Counter(
    "edgeserve_feedback_paired_store_errors_total",
    "Calls to the store of B's shadow answers (a folder, or Redis with STATE_URL) that failed "
    "or passed their deadline, by operation (remember, take): those answers stay unpaired.",
    ["operation"],
)
ab_weight = Gauge(
    "edgeserve_ab_weight",
    "Normalised traffic weight per variant.",
    ["variant"],
    multiprocess_mode="livemostrecent",
)
feature_enabled = Gauge(
    "edgeserve_feature_enabled",
    "1 when a runtime toggle (shadow, canary, sticky) is on.",
    ["feature"],
    multiprocess_mode="livemostrecent",
)
state_generation = Gauge(
    "edgeserve_state_generation",
    "Generation of the runtime state this worker applies; rises with every admin change.",
    multiprocess_mode="livemax",
)
state_sync_errors = Counter(
    "edgeserve_state_sync_errors_total",
    "Reads of the shared state that failed (store unreachable, invalid document); "
    "the worker kept serving its last good state.",
)
state_apply_failures = Counter(
    "edgeserve_state_apply_failures_total",
    "State generations a worker could not fully apply (a model file missing or changed).",
)
state_in_sync = Gauge(
    "edgeserve_state_in_sync",
    "1 when this worker serves every model the state names; the minimum over live workers.",
    multiprocess_mode="livemin",
)
state_store_up = Gauge(
    "edgeserve_state_store_up",
    "1 when the state store answered the last read; the minimum over live workers.",
    multiprocess_mode="livemin",
)
step_clients = Gauge(
    "edgeserve_step_clients",
    "Distinct sticky client ids since the weights last changed, counted up to 20; the most any "
    "live worker saw.",
    multiprocess_mode="livemax",
)
model_info = Gauge(
    "edgeserve_model_info",
    "1 for the model now in a slot, 0 for one that was there before.",
    ["variant", "name", "version"],
    multiprocess_mode="livemostrecent",
)
inflight_requests = Gauge(
    "edgeserve_inflight_requests",
    "Inference requests in progress.",
    multiprocess_mode="livesum",
)
build_info = Gauge(
    "edgeserve_build_info",
    "Always 1; labels give the edgeserve, Python and ONNX Runtime versions.",
    ["version", "python", "onnxruntime"],
    multiprocess_mode="livemax",
)


def record_build_info() -> None:
    build_info.labels(__version__, platform.python_version(), onnxruntime.__version__).set(1)


def zero_shadow_outcomes(pair: tuple[str, str], outcomes: Iterable[str]) -> None:
    """Export each comparison outcome of A's and B's versions `pair` at 0 before the first
    comparison: rate() ignores what a series held when it was first scraped, so the agreement
    rule would miss the first comparisons of every new pair."""
    for outcome in outcomes:
        shadow_comparisons.labels(*pair, outcome)
    shadow_topk_overlap.labels(*pair)
    shadow_score_delta.labels(*pair)


def publish_state(state: RuntimeState) -> None:
    """The gauges that show the state a worker serves."""
    for variant in VARIANTS:
        ab_weight.labels(variant).set(share(state.weights, variant))
    feature_enabled.labels("shadow").set(int(state.shadow_enabled))
    feature_enabled.labels("canary").set(int(state.canary_enabled))
    feature_enabled.labels("sticky").set(int(state.sticky_cookie))
    state_generation.set(state.generation)


VERSIONED = (
    inferences,
    inference_duration,
    feedback,
    shadow_comparisons,
    shadow_topk_overlap,
    shadow_score_delta,
    shadow_class_pairs,
)
"""The metrics labelled with model versions, whose series follow the tracked versions."""
VERSIONS_LABELS = (VERSION_LABEL, *PAIR_LABELS)
"""The labels that hold a model version: a series is kept while each it has is tracked."""
OTHER_VERSIONS_LABELS = {"edgeserve_model_info": ("version",)}
"""Families whose version label has another name."""


def tracked_versions(state: RuntimeState) -> frozenset[str]:
    """The versions whose series are kept: those in A and B and the previous A (at most 3)."""
    slots = [*state.models.values(), state.previous_a]
    return frozenset(slot.version[:12] for slot in slots if slot is not None)


def forget_untracked(versions: frozenset[str]) -> None:
    """Drop this worker's series of versions that left the tracked set.

    In multiprocess mode a series also lives in the worker's file, which prometheus-client
    cannot delete from (hence its warning, silenced here): `tracked_only` leaves such series
    out of every collection, and the files go with the metrics folder at the next start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for metric in VERSIONED:
            families = list(metric.collect())
            for label in VERSIONS_LABELS:
                for version in _versions_in(families, label) - versions:
                    metric.remove_by_labels({label: version})


def _versions_in(families: Iterable[Metric], label: str) -> set[str]:
    return {s.labels[label] for f in families for s in f.samples if label in s.labels}


class TrackedOnly:
    """A collector passing on what `source` collects, without the series of versions outside
    `versions` (a shadow pair goes when either of its versions does): the one place the bound
    on model versions is kept, in either mode."""

    def __init__(self, source: Any, versions: frozenset[str]):
        self.source = source
        self.versions = versions

    def collect(self) -> Iterator[Metric]:
        for family in self.source.collect():
            labels = OTHER_VERSIONS_LABELS.get(family.name, VERSIONS_LABELS)
            family.samples = [s for s in family.samples if self.tracks(s.labels, labels)]
            yield family

    def tracks(self, labels: dict[str, str], version_labels: tuple[str, ...]) -> bool:
        """Every version the series names is tracked (a series without one always is)."""
        return all(labels[name] in self.versions for name in version_labels if name in labels)


def collected(versions: frozenset[str]) -> TrackedOnly:
    """Every metric, of every worker in multiprocess mode, for the tracked versions only."""
    if MULTIPROCESS:
        registry = CollectorRegistry()  # a fresh one per read: the files change
        multiprocess.MultiProcessCollector(registry)
        return TrackedOnly(registry, versions)
    from prometheus_client import REGISTRY

    return TrackedOnly(REGISTRY, versions)


def render(versions: frozenset[str]) -> tuple[bytes, str]:
    """The exposition text, with the series of the tracked versions only."""
    return generate_latest(collected(versions)), CONTENT_TYPE_LATEST


def feedback_by_version(versions: frozenset[str]) -> list[dict[str, Any]]:
    """Feedback counted per variant and answering version (all workers), for the tracked
    versions: the table GET /admin/config shows."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for family in collected(versions).collect():
        if family.name != "edgeserve_feedback":
            continue
        for sample in family.samples:
            if sample.name != "edgeserve_feedback_total":
                continue
            labels = sample.labels
            key = (labels["variant"], labels[VERSION_LABEL])
            row = rows.setdefault(
                key, {"variant": key[0], "version": key[1], "correct": 0, "wrong": 0}
            )
            row[labels["outcome"]] += int(sample.value)
    return [rows[key] for key in sorted(rows)]


def class_pair_counts(b_version: str | None) -> dict[tuple[str, str], float]:
    """edgeserve_shadow_class_pairs_total of B's version `b_version`, summed over every
    worker."""
    if MULTIPROCESS:
        families = multiprocess.MultiProcessCollector(None).collect()
    else:
        families = shadow_class_pairs.collect()
    counts: dict[tuple[str, str], float] = {}
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if sample.name != "edgeserve_shadow_class_pairs_total":
                continue
            if labels["b_version"] == b_version:
                key = (labels["a_label"], labels["b_label"])
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def mark_worker_dead(pid: int) -> None:
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)
