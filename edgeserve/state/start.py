"""The state a server starts from: the stored one when valid, else the environment's.

Run once in the main process before the workers start, so they all begin from one decision.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

from edgeserve.errors import EdgeserveError, InsufficientStorage, StateUnavailable
from edgeserve.inference.model import file_model_version, file_sha256
from edgeserve.observability.logging import log
from edgeserve.settings import Settings
from edgeserve.state.backend import open_store
from edgeserve.state.model_store import ModelStore, folder_beside
from edgeserve.state.schema import InvalidState, RuntimeState, SlotModel
from edgeserve.state.store import StateStore, StoreUnavailable
from edgeserve.state.sync import new_change_id, read_state, unkept_model
from edgeserve.variants import CANDIDATE, CURRENT

LEGACY_VERSION = re.compile(r"^[0-9a-f]{12}$")


def state_from_env(settings: Settings, model_store: ModelStore) -> RuntimeState:
    """Generation 1 of the environment's weights, toggles and (kept) models, under a change id
    of its own, decided once in the main process so every worker starts from the same one."""
    sources = {CURRENT: settings.model_va_path, CANDIDATE: settings.model_vb_path}
    return RuntimeState(
        ab_weight_a=settings.ab_weight_a,
        ab_weight_b=settings.ab_weight_b,
        shadow_enabled=settings.shadow_enabled,
        canary_enabled=settings.canary_enabled,
        sticky_cookie=settings.sticky_cookie,
        models={slot: kept_or_original(model_store, src) for slot, src in sources.items() if src},
        change_id=new_change_id(),
    )


def kept_or_original(model_store: ModelStore, source: Path) -> SlotModel:
    """The kept copy; where the state folder cannot take one, the original file, so that the
    server still starts. Such a state is served but never written (see StateSync)."""
    try:
        return model_store.keep(source)
    except (InsufficientStorage, StateUnavailable):
        return SlotModel(str(Path(source).resolve()), file_model_version(source))


def settle(settings: Settings, state_file: Path) -> RuntimeState:
    """Decide the start state (blocking: the main process has no event loop yet)."""
    model_store = ModelStore(folder_beside(state_file))
    from_env = state_from_env(settings, model_store)

    async def decide() -> RuntimeState:
        store = open_store(settings, state_file)
        try:
            if store.kind == "file":
                await upgrade_legacy(store, model_store)
            return await start_state(store, from_env, host_check=missing_models(model_store))
        finally:
            await store.close()

    return asyncio.run(decide())


async def upgrade_legacy(store: StateStore, model_store: ModelStore) -> None:
    """Keep the rollout of a state file written before models were content-addressed.

    Such a file names each model by path and a 12-digit version; where the file there still
    has those bytes it is kept and named by its sha256. Anything else is left for the checks."""
    try:
        raw = await store.read()
    except (StoreUnavailable, ValueError):
        return
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, dict) or not models:
        return
    upgraded = {}
    for slot, spec in models.items():
        legacy = isinstance(spec, dict) and isinstance(spec.get("path"), str)
        if not legacy or not LEGACY_VERSION.match(str(spec.get("version"))):
            return
        try:
            kept = await asyncio.to_thread(model_store.keep, Path(spec["path"]))
        except EdgeserveError:
            return
        if not file_sha256(Path(kept.path)).startswith(spec["version"]):
            return
        upgraded[slot] = kept.to_dict()
    try:
        if await store.compare_and_set(raw.get("generation"), {**raw, "models": upgraded}):
            log.info("state_upgraded", store=store.kind, models=upgraded)
    except StoreUnavailable:
        return


def missing_models(model_store: ModelStore) -> Callable[[RuntimeState], str | None]:
    """Why this host cannot serve a state's models (a file missing or changed), or None."""

    def check(state: RuntimeState) -> str | None:
        for slot, model in sorted(state.models.items()):
            path = model_store.locate(model)
            if path is None:
                return f"model {slot} file {model.path} is missing"
            if file_model_version(path) != model.version:
                return f"model {slot} file {path} changed since it was saved"
        return None

    return check


async def start_state(
    store: StateStore, from_env: RuntimeState, *, host_check: Callable[[RuntimeState], str | None]
) -> RuntimeState:
    """The state to start from: the stored one when valid, else the environment's.

    An invalid document is logged and discarded where the store can (the file is moved aside;
    a store without `discard_invalid` keeps it and is not seeded). The environment seeds an
    empty store; a store that cannot be written means read-only admin, not a failed start.
    `host_check(state)` says why this host cannot serve a stored state (a model file missing
    or changed), checked for a file store only: a shared store's document is the fleet's."""
    stale = getattr(store, "clean_stale_temp_files", None)
    if stale is not None and (removed := await asyncio.to_thread(stale)):
        log.info("state_temp_files_removed", files=[str(path) for path in removed])
    try:
        stored = await read_state(store)
        problem = host_check(stored) if stored is not None and store.kind == "file" else None
    except StoreUnavailable as error:
        log.error("state_store_unavailable", store=store.kind, error=str(error))
        return from_env
    except InvalidState as error:
        stored, problem = None, str(error)
    if stored is not None and problem is None:
        log.info("state_restored", store=store.kind, generation=stored.generation)
        return stored
    if problem is not None:
        discard = getattr(store, "discard_invalid", None)
        log.error("state_invalid", store=store.kind, reason=problem, discarded=discard is not None)
        if discard is None:
            return from_env
        try:
            moved_to = await discard()
        except StoreUnavailable as error:
            log.error("state_read_only", store=store.kind, error=str(error))
            return from_env
        log.warning("state_moved_aside", store=store.kind, moved_to=str(moved_to))
    if (unkept := unkept_model(from_env)) is not None:
        log.warning("state_read_only", store=store.kind, error=unkept)
        return from_env
    try:
        if await store.compare_and_set(None, from_env.to_dict()):
            log.info("state_seeded", store=store.kind, generation=from_env.generation)
            return from_env
    except StoreUnavailable as error:
        log.warning("state_read_only", store=store.kind, error=str(error))
        return from_env
    # Another instance seeded it first: adopt what it wrote.
    try:
        return await read_state(store) or from_env
    except (StoreUnavailable, InvalidState):
        return from_env
