"""Whether a model may join the other slot's: a pure check, run before a hot load swaps it in."""

from __future__ import annotations

from collections.abc import Sequence

from edgeserve.errors import ModelLoadError

SHOWN = 5  # labels named in the message; the rest are counted


def check_labels(
    new: Sequence[str], other: Sequence[str] | None, *, slot: str, other_slot: str, allowed: bool
) -> None:
    """Refuse (422 labels_mismatch) a model whose label set differs from the other slot's,
    unless the caller says the change is intended: shadow and feedback compare by label."""
    if other is None or allowed or set(new) == set(other):
        return
    added = sorted(set(new) - set(other))
    missing = sorted(set(other) - set(new))
    parts = []
    if added:
        parts.append(f"{len(added)} new ({_some(added)})")
    if missing:
        parts.append(f"{len(missing)} missing ({_some(missing)})")
    raise ModelLoadError(
        f"the model for slot {slot} has other labels than slot {other_slot}'s: "
        f"{' and '.join(parts)}; load a model with the same labels, or send "
        '"allow_label_change": true if the change is intended',
        code="labels_mismatch",
    )


def _some(labels: list[str]) -> str:
    shown = ", ".join(labels[:SHOWN])
    return shown if len(labels) <= SHOWN else f"{shown}, ..."
