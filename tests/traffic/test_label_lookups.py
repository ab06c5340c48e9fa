"""Label lookups on the request path cost one dict lookup, whatever the number of labels.

A model with 100,000 labels once made every feedback post (and every shadow comparison) build
a set of all of them on the event loop. These tests count scans of the label list instead of
timing them, so they hold on a busy machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

from edgeserve.inference.metadata import ModelMeta
from edgeserve.inference.model import Prediction
from edgeserve.server.routes.feedback import known_labels
from edgeserve.traffic.compare import NO_COMMON_LABEL, compare

MANY = 100_000
POSTS = 1000


class CountedLabels(tuple[str, ...]):
    """A label list that counts how often it is scanned (iterated or searched)."""

    scans = 0

    def __iter__(self) -> Iterator[str]:
        type(self).scans += 1
        return super().__iter__()

    def __contains__(self, label: object) -> bool:
        type(self).scans += 1
        return super().__contains__(label)


def counted(count: int) -> CountedLabels:
    CountedLabels.scans = 0
    return CountedLabels(f"class_{index}" for index in range(count))


def runtime_serving(a: ModelMeta, b: ModelMeta) -> SimpleNamespace:
    models = {"A": SimpleNamespace(meta=a), "B": SimpleNamespace(meta=b)}
    return SimpleNamespace(registry=SimpleNamespace(models=models))


def test_feedback_label_checks_scan_the_labels_at_most_once_per_model():
    labels = counted(MANY)
    runtime = runtime_serving(ModelMeta(labels=labels), ModelMeta(labels=labels))
    for _ in range(POSTS):
        assert f"class_{MANY - 1}" in known_labels(runtime)
        assert "not-a-label" not in known_labels(runtime)
    # Each model's label -> index map is built with it (one scan); the checks scan nothing.
    assert CountedLabels.scans <= 2, CountedLabels.scans


def test_the_label_index_names_each_label_at_its_first_position():
    meta = ModelMeta(labels=("cat", "dog", "cat"))
    assert dict(meta.label_index) == {"cat": 0, "dog": 1}
    assert meta.label_index is meta.label_index  # built once per model


def test_a_shadow_comparison_looks_the_label_up_without_scanning_b_labels():
    meta = ModelMeta(labels=counted(MANY))
    primary = [Prediction(index=0, label="red", score=0.9)]
    shadow = [Prediction(index=0, label="class_1", score=0.8)]
    before = CountedLabels.scans
    for _ in range(POSTS):
        assert compare(primary, shadow, meta.label_index).outcome == NO_COMMON_LABEL
    assert CountedLabels.scans == before, CountedLabels.scans - before
