"""Per-class flips: shadow comparisons counted by A's top-1 label against B's top-1 label.

A worker counts A's top-1 answers per label. When a B starts serving, the MAX_CLASSES labels
A answered most so far get their own row and column for that B's whole life (with too little
history, the rest are filled by the labels seen first, A's answer first, then B's); every other
label counts as OTHER. The names are chosen once per B and the metric carries B's version, so
it holds at most (MAX_CLASSES + 1)^2 series per worker and B version, whatever the traffic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

MAX_CLASSES = 20
OTHER = "other"
MAX_COUNTED = 10_000
"""Distinct A labels counted: the models' label lists, which operators choose, bound them;
this caps them against a model with a label list out of proportion."""

Pair = tuple[str, str]
"""(A's top-1 label, B's top-1 label), each a tracked label or OTHER."""


class ClassLabels:
    """The labels this worker tracks by name; the key a comparison is counted under."""

    def __init__(self, capacity: int = MAX_CLASSES):
        self.capacity = capacity
        self.tracked: set[str] = set()
        self.answered: Counter[str] = Counter()
        """A's top-1 answers per label in this worker, over every B: what `restart` ranks."""

    def count(self, a_label: str) -> None:
        if a_label in self.answered or len(self.answered) < MAX_COUNTED:
            self.answered[a_label] += 1

    def restart(self) -> None:
        """A new B: name the labels A answered most, fixed until the next B (a series that
        changed names mid-life would split one label's counts)."""
        self.tracked = {label for label, _ in self.answered.most_common(self.capacity)}

    def _name(self, label: str) -> str:
        if label not in self.tracked and len(self.tracked) < self.capacity:
            self.tracked.add(label)
        return label if label in self.tracked else OTHER

    def pair(self, a_label: str, b_label: str) -> Pair:
        return self._name(a_label), self._name(b_label)


def flips(pairs: Mapping[Pair, float], a_label: str) -> tuple[float, float]:
    """(changed, compared): of A's answers `a_label`, how many B answered otherwise (for OTHER,
    B answering any untracked label counts as kept: the two are not told apart)."""
    compared = sum(count for (a, _), count in pairs.items() if a == a_label)
    return compared - pairs.get((a_label, a_label), 0.0), compared


def class_rows(pairs: Mapping[Pair, float]) -> list[dict[str, object]]:
    """One row per A label, most compared first (OTHER last): what B answered instead."""
    rows = []
    for a_label in {a for a, _ in pairs}:
        changed, compared = flips(pairs, a_label)
        if compared <= 0:
            continue
        answers = {b: int(n) for (a, b), n in pairs.items() if a == a_label and n > 0}
        rows.append(
            {
                "a_label": a_label,
                "compared": int(compared),
                "changed": int(changed),
                "flip_rate": changed / compared,
                "b_labels": dict(sorted(answers.items(), key=lambda item: -item[1])),
            }
        )
    return sorted(rows, key=lambda row: (row["a_label"] == OTHER, -row["compared"]))


class SinceCandidate:
    """The class pair counts since the current B started serving: counters never go back, so
    the totals at that moment are kept and taken off."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.baseline: dict[Pair, float] = {}

    def restart(self, version: str | None, totals: Mapping[Pair, float]) -> None:
        self.version = version
        self.baseline = dict(totals)

    def since(self, totals: Mapping[Pair, float]) -> dict[Pair, float]:
        grown = {pair: count - self.baseline.get(pair, 0.0) for pair, count in totals.items()}
        return {pair: count for pair, count in grown.items() if count > 0}
