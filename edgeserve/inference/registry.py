"""This worker's models: what each slot serves, and the one way a model gets there.

A model is kept (content-addressed copy), then admitted: loaded with its hash checked once,
warmed and verified on recent real inputs in a process of its own (inference.isolated), where
a memory bomb or a hang is a refusal. The candidate (B) keeps running in that process; A's
session is then loaded in this process, where every run has a deadline. A request takes the
slot's model once and keeps it, so a swap never changes the model under a request in flight.
Admission and loading run on one model-load thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from edgeserve.errors import EdgeserveError, ModelHazard, ModelLoadError, ModelUnsafe
from edgeserve.inference.deadline import Deadlines
from edgeserve.inference.isolated import KILL_GRACE_SECONDS, load_isolated
from edgeserve.inference.model import Model
from edgeserve.inference.model_path import resolve_in_model_dir
from edgeserve.inference.recent import RecentInputs, verify_on
from edgeserve.inference.session import RunStopped
from edgeserve.inference.signature import TrustedKeys, read_signature
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.settings import Settings
from edgeserve.state.model_store import ModelStore
from edgeserve.state.schema import SlotModel
from edgeserve.state.shared_models import SharedModels
from edgeserve.variants import CANDIDATE, CURRENT, VARIANTS, Variant

T = TypeVar("T")

VERSION = re.compile(r"[0-9a-fA-F]{12,64}")
FULL_VERSION_CHARS = 64
Identity = tuple[str, str]
"""What makes two models the same: their bytes and their file name (the folder may differ)."""


def identity(model: SlotModel | Model) -> Identity:
    if isinstance(model, Model):
        return model.sha256, model.path.name
    return model.version, Path(model.path).name


def load_warm(
    path: Path,
    *,
    threads: int,
    warmup_runs: int,
    expected_sha256: str,
    hashed: bool,
    deadlines: Deadlines | None = None,
) -> Model:
    """Load and warm a model in this process; run in a thread, never on the event loop."""
    model = Model.load(
        path,
        intra_op_threads=threads,
        expected_sha256=expected_sha256,
        hashed=hashed,
        deadlines=deadlines,
    )
    model.warm(warmup_runs)
    return model


def log_doubts(model: Model) -> None:
    """Log what loading a model assumed or what looks wrong about it."""
    for event, message in model.doubts():
        log.warning(event, model=model.name, version=model.version, message=message)


def unsafe(hazard: ModelHazard | RunStopped, name: str, version: str, when: str) -> ModelUnsafe:
    what = (
        hazard.message
        if isinstance(hazard, ModelHazard)
        else f"model {name} ({version}) {hazard.what}"
    )
    return ModelUnsafe(
        f"{what} {when}: it was not loaded and the previous model keeps serving; "
        "fix the model, or raise INFERENCE_TIMEOUT_MS / MODEL_MEMORY_LIMIT_MB if it needs more"
    )


class ModelRegistry:
    def __init__(self, settings: Settings, model_store: ModelStore, recent_inputs: RecentInputs):
        self.settings = settings
        self.model_store = model_store
        self.recent_inputs = recent_inputs
        self.deadlines = Deadlines(settings.inference_timeout_seconds())
        self.trusted_keys = TrustedKeys.from_files(settings.model_trusted_keys)
        self.shared = SharedModels(settings.state_url, model_store) if settings.state_url else None
        """The fleet's models in Redis (STATE_URL), where an instance fetches what it lacks."""
        self.models: dict[Variant, Model] = {}
        self.preloaded: dict[Identity, Model] = {}
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load")
        self.unsafe: dict[str, str] = {}
        """sha256 -> why: models of the last `follow` that admission refused as unsafe."""

    def get(self, variant: Variant) -> Model | None:
        return self.models.get(variant)

    def serving_versions(self) -> set[str]:
        """Full versions of the models this worker holds: serving, or loaded for a commit."""
        return {m.sha256 for m in (*self.models.values(), *self.preloaded.values())}

    def describe(self) -> dict[str, dict[str, str]]:
        return {variant: model.describe() for variant, model in self.models.items()}

    async def keep_file(self, requested: str) -> SlotModel:
        """Keep a file of MODEL_DIR in the model store (what a state may name); its bytes are
        hashed once, here, so loading the kept copy need not hash them again."""
        source = resolve_in_model_dir(self.settings.model_dir, requested)
        return await asyncio.to_thread(self.model_store.keep, source)

    async def pushed(self, version: str) -> SlotModel:
        """The pushed (or kept) model of `version`, 12 to 64 hex characters, as a push
        answers it; with STATE_URL a full version this host lacks is fetched from Redis.
        422 model_missing when neither holds it."""
        if not VERSION.fullmatch(version):
            raise ModelLoadError(
                f"version must be 12 to 64 hex characters, as edgeserve admin push prints it, "
                f"got {version!r}"
            )
        version = version.lower()
        kept = self.model_store.find(version)
        if kept is None and self.shared is not None and len(version) == FULL_VERSION_CHARS:
            fetched = await asyncio.to_thread(self.shared.fetch, version)
            kept = SlotModel(str(fetched), version) if fetched is not None else None
        if kept is None:
            raise ModelLoadError(
                f"no model of version {version} is kept on this host: push it first "
                "(edgeserve admin push FILE, or POST /admin/uploads)",
                code="model_missing",
            )
        return kept

    async def share(self, kept: SlotModel) -> None:
        """Put a kept model where the fleet fetches it (Redis), before a state names it."""
        if self.shared is not None:
            await asyncio.to_thread(self.shared.share, kept)

    async def load(self, wanted: SlotModel, variant: Variant, *, hashed: bool = False) -> Model:
        """Admit the bytes `wanted` names (hash checked), then make them ready for `variant`."""
        path = self.model_store.locate(wanted) or await asyncio.to_thread(
            self.model_store.adopt, wanted, self.settings.model_dir
        )
        if path is None and self.shared is not None:
            path = await asyncio.to_thread(self.shared.fetch, wanted.version)
        if path is None:
            raise ModelLoadError(
                f"model file {wanted.path} (version {wanted.version[:12]}) is missing on this "
                "host: load the model again through this instance",
                code="model_missing",
            )
        self.trusted_keys.check(read_signature(path), wanted.version, path.name)
        admitted = await self._in_loader(self._admit, path, wanted.version, hashed)
        settled = await self.settle(admitted, variant)
        if settled is not admitted:
            admitted.close()  # never served: its process has no request to finish
        return settled

    def _admit(self, path: Path, sha256: str, hashed: bool) -> Model:
        """Load, warm and verify on recent real inputs, in a process of its own, within
        INFERENCE_TIMEOUT_MS per run and MODEL_MEMORY_LIMIT_MB: what a bomb or a hang does
        there is a refusal (422 model_unsafe), never a dead or frozen server."""
        try:
            model = self._isolate(path, sha256, hashed)
        except RunStopped as stopped:
            raise unsafe(stopped, path.stem, sha256[:12], "while loading") from None
        try:
            model.warm(self.settings.warmup_runs)
            log_doubts(model)
            verify_on(model, self.recent_inputs.snapshot())
        except ModelHazard as hazard:
            model.close()
            raise unsafe(
                hazard, model.name, model.version, "during warm-up or on recent real inputs"
            ) from None
        except BaseException:
            model.close()
            raise
        return model

    def _isolate(self, path: Path, sha256: str, hashed: bool) -> Model:
        return load_isolated(
            path,
            sha256=sha256,
            hashed=hashed,
            threads=self.settings.session_threads(),
            memory_mb=self.settings.model_memory_limit_mb,
            timeout_seconds=self.settings.inference_timeout_seconds(),
        )

    async def settle(self, model: Model, variant: Variant) -> Model:
        """The admitted `model` as `variant` runs it: B in a process of its own, A in this
        process (its session loaded here, with every run's deadline)."""
        if model.isolated == (variant == CANDIDATE):
            return model
        if variant == CANDIDATE:
            isolated = await self._in_loader(self._isolate, model.path, model.sha256, True)
            await self._in_loader(isolated.warm, self.settings.warmup_runs)
            return isolated
        settled = await self._in_loader(
            lambda: load_warm(
                model.path,
                threads=self.settings.session_threads(),
                warmup_runs=self.settings.warmup_runs,
                expected_sha256=model.sha256,
                hashed=True,
                deadlines=self.deadlines,
            )
        )
        return settled

    async def _in_loader(self, work: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.loader, work, *args)

    async def verify(self, model: Model) -> None:
        """Refuse a model that fails on this worker's recent real inputs: 422, and
        model_unsafe when it hangs, dies or answers non-finite scores there."""
        samples = self.recent_inputs.snapshot()
        if not samples:
            return
        try:
            await self._in_loader(verify_on, model, samples)
        except ModelHazard as hazard:
            raise unsafe(hazard, model.name, model.version, "on recent real inputs") from None

    async def doubts(self, model: Model) -> list[str]:
        """What looks wrong about a model (Model.doubts runs it once), off the event loop."""
        return [message for _event, message in await self._in_loader(model.doubts)]

    @contextmanager
    def preloading(self, model: Model) -> Iterator[None]:
        """Offer a model loaded before a commit to the `follow` that applies it."""
        key = identity(model)
        self.preloaded[key] = model
        try:
            yield
        finally:
            self.preloaded.pop(key, None)
            self.retire(model)

    async def follow(self, wanted: Mapping[str, SlotModel]) -> list[str]:
        """Make each slot serve what `wanted` names; answers what could not be loaded.

        A slot that fails keeps its model; only A with nothing to keep raises (at start)."""
        failed: list[str] = []
        self.unsafe = {}
        for variant in VARIANTS:
            try:
                await self._follow(variant, wanted.get(variant))
            except EdgeserveError as error:
                if variant == CURRENT and variant not in self.models:
                    raise
                if isinstance(error, ModelUnsafe):
                    self.unsafe[wanted[variant].version] = error.message
                failed.append(f"{variant}: {error.message}")
        return failed

    async def _follow(self, variant: Variant, wanted: SlotModel | None) -> None:
        current = self.models.get(variant)
        if wanted is None:
            if current is not None:
                del self.models[variant]
                metrics.model_info.labels(variant, current.name, current.version).set(0)
                self.retire(current)
            return
        if current is not None and identity(current) == identity(wanted):
            return
        key = identity(wanted)
        known = [m for m in (*self.models.values(), self.preloaded.get(key)) if m is not None]
        same = [m for m in known if identity(m) == key]
        fitting = next((m for m in same if m.isolated == (variant == CANDIDATE)), None)
        if fitting is not None:
            self.swap(variant, fitting)
        elif same:  # already admitted, serving the other slot: run it the way this slot does
            self.swap(variant, await self.settle(same[0], variant))
        else:
            self.swap(variant, await self.load(wanted, variant))

    def swap(self, variant: Variant, model: Model) -> None:
        previous = self.models.get(variant)
        self.models[variant] = model
        if previous is not None and previous.version != model.version:
            metrics.model_info.labels(variant, previous.name, previous.version).set(0)
        metrics.model_info.labels(variant, model.name, model.version).set(1)
        if previous is not None:
            self.retire(previous)

    def retire(self, model: Model) -> None:
        """Stop a model's own process once no slot serves it and no request can still be
        running on it (one deadline from now)."""
        if not model.isolated or any(m is model for m in self.models.values()):
            return
        if any(m is model for m in self.preloaded.values()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            model.close()
            return
        loop.call_later(self.settings.inference_timeout_seconds() + KILL_GRACE_SECONDS, model.close)

    async def warm(
        self, executor_for: Callable[[Model], Executor], runs: int
    ) -> dict[str, dict[str, float]]:
        """Run each slot's model `runs` times on its executor: milliseconds taken, per slot."""
        loop = asyncio.get_running_loop()
        report: dict[str, dict[str, float]] = {}
        for variant in VARIANTS:
            model = self.models.get(variant)
            if model is not None:
                elapsed_ms = await loop.run_in_executor(executor_for(model), model.warm, runs)
                report[variant] = {"runs": runs, "ms": round(elapsed_ms, 3)}
        return report

    def close(self) -> None:
        self.loader.shutdown(wait=False, cancel_futures=True)
        if self.shared is not None:
            self.shared.close()
        for model in {id(m): m for m in (*self.models.values(), *self.preloaded.values())}.values():
            model.close()
