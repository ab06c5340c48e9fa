"""The admin API's changes: each is validated, persisted as a new generation, then applied.

A model is kept in the content-addressed store and loaded before its change is written, so a
model that cannot serve is refused (422) and a write that fails (503) leaves nothing changed.
"""

from __future__ import annotations

from typing import Any

from edgeserve.errors import NoModelB, NoPreviousA
from edgeserve.inference.compat import check_labels
from edgeserve.inference.metadata import unnamed_sidecar
from edgeserve.inference.model import Model
from edgeserve.server.runtime import Runtime
from edgeserve.state.schema import RuntimeState, SlotModel, validate_update
from edgeserve.variants import CANDIDATE, CURRENT, Variant, other


async def update_config(runtime: Runtime, update: Any) -> RuntimeState:
    checked = validate_update(update)  # refuse a bad body before touching the store
    return await runtime.sync.commit(lambda state: state.next(**checked))


async def promote(runtime: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    """B's model becomes A: the very session B serves, checked again on recent real inputs.

    B is emptied rather than shadow turned off: B would otherwise be A's own version, which
    shadow would compare with itself and the guard would judge against itself, and B's
    process would run for nothing. Shadow stays as the operator set it for the next B."""
    registry = runtime.registry
    candidate = registry.get(CANDIDATE)
    if candidate is None:
        raise NoModelB("no model is loaded in slot B: load one with POST /admin/models/B")
    previous = registry.get(CURRENT)
    await registry.verify(candidate)
    served = SlotModel(str(candidate.path), candidate.sha256)
    with registry.preloading(candidate):
        await runtime.sync.commit(
            lambda state: state.next(
                ab_weight_a=1.0,
                ab_weight_b=0.0,
                models={CURRENT: served},
                previous_a=state.models.get(CURRENT),
                last_rollback=None,  # the rollout it described ended with this promote
            )
        )
    return (previous.describe() if previous else {}), candidate.describe()


async def rollback(runtime: Runtime) -> tuple[dict[str, str], dict[str, str]]:
    """The A of before the last promote serves A again: loaded and warmed before the change is
    written, so requests keep flowing on the current A until it is ready. The A it replaces
    becomes the previous A, so a second rollback undoes the first."""
    registry = runtime.registry
    wanted = runtime.state.previous_a
    if wanted is None:
        raise NoPreviousA(
            "no previous A to roll back to: rollback restores the A of before a promote, "
            "and none was promoted; load a model into A with POST /admin/models/A"
        )
    replaced = registry.get(CURRENT)
    restored = await registry.load(wanted, CURRENT)
    with registry.preloading(restored):
        await runtime.sync.commit(
            lambda state: state.next(
                models={**state.models, CURRENT: wanted}, previous_a=state.models.get(CURRENT)
            )
        )
    return (replaced.describe() if replaced else {}), restored.describe()


async def load_into(
    runtime: Runtime, variant: Variant, kept: SlotModel, *, allow_label_change: bool = False
) -> tuple[Model, bool, list[str]]:
    """Admit a kept model (load, warm, verify), then record it as the slot's model; answers
    the model the slot serves, whether that changed, and what looks doubtful about it
    (Model.doubts), for the operator. The version the slot already serves
    is a no-op, decided before admission: nothing is loaded or written, so nothing it counted
    starts again."""
    registry = runtime.registry
    served = registry.get(variant)
    if served is not None and served.sha256 == kept.version:
        return served, False, []

    def change(state: RuntimeState) -> RuntimeState:
        # A new B is a new candidate: whatever quarantined the old one does not carry over.
        quarantine = None if variant == CANDIDATE else state.quarantine
        return state.next(models={**state.models, variant: kept}, quarantine=quarantine)

    # From before its bytes are read until the state names it (retention then keeps it as A
    # or B), no worker's gc may remove the kept copy, however long ago it was pushed.
    with registry.model_store.loading(kept):
        model = await registry.load(kept, variant, hashed=True)
        with registry.preloading(model):  # refused or not, a model no slot takes is let go
            beside = registry.get(other(variant))
            model_b = model if variant == CANDIDATE else beside
            check_labels(
                model.meta.labels,
                beside.meta.labels if beside else None,
                slot=variant,
                allowed=allow_label_change,
                unnamed=None if model_b is None else unnamed_sidecar(model_b.meta, model_b.path),
            )
            warnings = await registry.doubts(model)
            await registry.share(kept)  # before the state names it: every instance can fetch it
            await runtime.sync.commit(change)
    return model, True, warnings
