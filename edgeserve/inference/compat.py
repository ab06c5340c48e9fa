"""Whether a model may join the other slot's: a pure check, run before a hot load swaps it in."""

from __future__ import annotations

from collections.abc import Sequence

from edgeserve.errors import ModelLoadError
from edgeserve.variants import CANDIDATE

SHOWN = 5  # labels named in the message; the rest are counted


def check_labels(
    new: Sequence[str],
    other: Sequence[str] | None,
    *,
    slot: str,
    allowed: bool,
    unnamed: str | None = None,
) -> None:
    """Refuse (422 labels_mismatch) a pair of models where B cannot name every label of A's,
    unless the caller says the change is intended: shadow compares answers by label name.

    B may add classes (a candidate that learned a new one); it may not drop or rename A's.
    `unnamed` is the sidecar B's labels would come from when they are the class_N defaults:
    the usual cause of a mismatch is that file missing, so the message says so."""
    if other is None or allowed:
        return
    labels_a, labels_b = (other, new) if slot == CANDIDATE else (new, other)
    problem = labels_problem(labels_a, labels_b, unnamed)
    if problem is not None:
        raise ModelLoadError(
            f'{problem}, or send "allow_label_change": true if the change is intended',
            code="labels_mismatch",
        )


def labels_problem(
    labels_a: Sequence[str], labels_b: Sequence[str], unnamed: str | None
) -> str | None:
    """What B lacks of A's labels and how to fix it, or None when B names them all."""
    missing = sorted(set(labels_a) - set(labels_b))
    if not missing:
        return None
    shown = ", ".join(missing[:SHOWN]) + (", ..." if len(missing) > SHOWN else "")
    fix = (
        f"its labels are the class_0, class_1, ... defaults as nothing names its classes: put "
        f"its labels in {unnamed} next to the model (edgeserve models init writes one)"
        if unnamed
        else "load a model that keeps A's labels (it may add new ones)"
    )
    return f"slot B's model has no label for {len(missing)} of slot A's labels ({shown}): {fix}"
