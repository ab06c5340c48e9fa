"""The class names of a model: the sidecar's, else the model's own, else class_<i>.

Labels are read under any of LABEL_KEYS, as a JSON list, one name a line, or an {index: name}
map, and must give exactly one non-empty name per class when the class count is fixed. The
model's `classes`, `names` and `character` entries are read leniently: other tools use those
keys for other things (a PaddleOCR recogniser's `character` is its alphabet, not one name per
output), so one that is not a label list is skipped rather than refused.
"""

from __future__ import annotations

from typing import Any

from edgeserve.errors import ModelLoadError
from edgeserve.inference.description.coerce import Fail, decoded
from edgeserve.inference.description.vocabulary import ASSUMED, LABEL_KEYS, MODEL, SIDECAR


def pick_labels(
    own: dict[str, Any],
    given: dict[str, Any],
    num_classes: int | None,
    fail: Fail,
    sources: dict[str, str],
) -> tuple[str, ...] | None:
    """The sidecar's labels, else the model's under LABEL_KEYS, else class_<i>.

    Records in `sources["labels"]` where they came from; None when nothing gives labels and
    the class count is not fixed."""
    for values, source in ((given, SIDECAR), (own, MODEL)):
        for key in LABEL_KEYS:
            if key not in values:
                continue
            lenient = source == MODEL and key != "labels"  # other tools' keys may mean other things
            try:
                labels = _labels(values[key], num_classes, fail, key)
            except ModelLoadError:
                if lenient:
                    continue
                raise
            sources["labels"] = source
            return labels
    if num_classes is None:
        return None
    sources["labels"] = ASSUMED
    return tuple(f"class_{i}" for i in range(num_classes))


def _labels(value: Any, num_classes: int | None, fail: Fail, key: str) -> tuple[str, ...]:
    value = decoded(value)
    if isinstance(value, str):
        if "\n" not in value.strip():
            raise fail(key, 'must be a JSON list of strings, e.g. ["cat", "dog"], or one a line')
        value = [line.strip() for line in value.splitlines() if line.strip()]
    if isinstance(value, dict):
        value = _indexed(value, fail, key)
    if not isinstance(value, list) or not value:
        raise fail(key, f"must be a non-empty list of strings, got {type(value).__name__}")
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    if bad:
        raise fail(key, f"must hold only non-empty strings, found {bad[0]!r}")
    if num_classes is not None and len(value) != num_classes:
        raise fail(
            key,
            f"has {len(value)} entries but the model outputs {num_classes} classes: "
            "give exactly one label per class",
        )
    return tuple(value)


def _indexed(mapping: dict[Any, Any], fail: Fail, key: str) -> list[Any]:
    """{index: name} (keys as numbers or strings) -> names in index order, 0..n-1 all present."""
    try:
        by_index = {int(k): v for k, v in mapping.items()}
    except (TypeError, ValueError):
        raise fail(key, "must map class indexes 0, 1, ... to names") from None
    if sorted(by_index) != list(range(len(by_index))):
        raise fail(key, f"must map every index from 0 to {len(by_index) - 1} to a name")
    return [by_index[i] for i in range(len(by_index))]
