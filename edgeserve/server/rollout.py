"""The admin API's changes: each is validated, persisted as a new generation, then applied.

A model is kept in the content-addressed store and loaded before its change is written, so a
model that cannot serve is refused (422) and a write that fails (503) leaves nothing changed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from edgeserve.errors import NoModelB
from edgeserve.inference.compat import check_labels
from edgeserve.inference.model import Model
from edgeserve.inference.model_path import resolve_in_model_dir
from edgeserve.server.runtime import Runtime
from edgeserve.state.schema import RuntimeState, SlotModel, apply_update, validate_update


async def update_config(runtime: Runtime, update: Any) -> RuntimeState:
    validate_update(update)  # refuse a bad body before touching the store
    return await runtime.sync.commit(lambda state: apply_update(state, update))


async def promote(runtime: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    """B's model becomes A: exactly the bytes B served, in a new warmed session."""
    candidate = runtime.slots.get("B")
    if candidate is None:
        raise NoModelB("no model is loaded in slot B: load one with POST /admin/models/B")
    previous = runtime.slots.get("A")
    served = SlotModel(str(candidate.path), candidate.sha256)
    promoted = await runtime.load_model(served)
    await runtime.verify(promoted)
    with runtime.preloading(promoted):
        await runtime.sync.commit(
            lambda state: state.next(
                ab_weight_a=1.0, ab_weight_b=0.0, models={**state.models, "A": served}
            )
        )
    return (previous.describe() if previous else {}), promoted.describe()


async def load_into(
    runtime: Runtime, variant: str, requested: str, *, allow_label_change: bool = False
) -> Model:
    """Keep the file's bytes, load and warm them, then record them as the slot's model."""
    source = resolve_in_model_dir(runtime.settings.model_dir, requested)
    kept = await asyncio.to_thread(runtime.model_store.keep, source)
    model = await runtime.load_model(kept)
    other = runtime.slots.get("B" if variant == "A" else "A")
    other_labels = other.meta.labels if other else None
    check_labels(model.meta.labels, other_labels, slot=variant, allowed=allow_label_change)
    await runtime.verify(model)

    def change(state: RuntimeState) -> RuntimeState:
        # A new B is a new candidate: whatever quarantined the old one does not carry over.
        quarantine = None if variant == "B" else state.quarantine
        return state.next(models={**state.models, variant: kept}, quarantine=quarantine)

    with runtime.preloading(model):
        await runtime.sync.commit(change)
    return model
