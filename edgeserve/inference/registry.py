"""This worker's models: what each slot serves, and the one way a model gets there.

A model is kept (content-addressed copy), loaded with its hash checked once, warmed, verified
on recent real inputs, then swapped into a slot. A request takes the slot's model once and
keeps it, so a swap never changes the model under a request in flight. A model already
serving moves to the other slot as it is (promote): one session, never a second copy.
Loading and verifying run on one model-load thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from edgeserve.errors import EdgeserveError, ModelLoadError
from edgeserve.inference.model import Model
from edgeserve.inference.model_path import resolve_in_model_dir
from edgeserve.inference.recent import RecentInputs, verify_on
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.settings import Settings
from edgeserve.state.model_store import ModelStore
from edgeserve.state.schema import SlotModel
from edgeserve.variants import CURRENT, VARIANTS, Variant

Identity = tuple[str, str]
"""What makes two models the same: their bytes and their file name (the folder may differ)."""


def identity(model: SlotModel | Model) -> Identity:
    if isinstance(model, Model):
        return model.sha256, model.path.name
    return model.version, Path(model.path).name


def load_warm(
    path: Path, *, threads: int, warmup_runs: int, expected_sha256: str, hashed: bool
) -> Model:
    """Load and warm a model, logging what it assumed; run in a thread, never on the event loop."""
    model = Model.load(
        path, intra_op_threads=threads, expected_sha256=expected_sha256, hashed=hashed
    )
    model.warm(warmup_runs)
    for event, message in model.doubts():
        log.warning(event, model=model.name, version=model.version, message=message)
    return model


class ModelRegistry:
    def __init__(self, settings: Settings, model_store: ModelStore, recent_inputs: RecentInputs):
        self.settings = settings
        self.model_store = model_store
        self.recent_inputs = recent_inputs
        self.models: dict[Variant, Model] = {}
        self.preloaded: dict[Identity, Model] = {}
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load")

    def get(self, variant: Variant) -> Model | None:
        return self.models.get(variant)

    def describe(self) -> dict[str, dict[str, str]]:
        return {variant: model.describe() for variant, model in self.models.items()}

    async def load_file(self, requested: str) -> tuple[SlotModel, Model]:
        """Keep a file of MODEL_DIR in the model store (what a state may name) and load the
        kept copy; its bytes are hashed once, by the keep."""
        source = resolve_in_model_dir(self.settings.model_dir, requested)
        kept = await asyncio.to_thread(self.model_store.keep, source)
        return kept, await self.load(kept, hashed=True)

    async def load(self, wanted: SlotModel, *, hashed: bool = False) -> Model:
        """Load the bytes `wanted` names (hash checked) and warm them, off the event loop."""
        path = self.model_store.locate(wanted) or await asyncio.to_thread(
            self.model_store.adopt, wanted, self.settings.model_dir
        )
        if path is None:
            raise ModelLoadError(
                f"model file {wanted.path} (version {wanted.version[:12]}) is missing on this "
                "host: load the model again through this instance",
                code="model_missing",
            )
        return await asyncio.get_running_loop().run_in_executor(
            self.loader,
            lambda: load_warm(
                path,
                threads=self.settings.session_threads(),
                warmup_runs=self.settings.warmup_runs,
                expected_sha256=wanted.version,
                hashed=hashed,
            ),
        )

    async def verify(self, model: Model) -> None:
        """Refuse (422) a model that fails on this worker's recent real inputs."""
        samples = self.recent_inputs.snapshot()
        if samples:
            await asyncio.get_running_loop().run_in_executor(self.loader, verify_on, model, samples)

    @contextmanager
    def preloading(self, model: Model) -> Iterator[None]:
        """Offer a model loaded before a commit to the `follow` that applies it."""
        key = identity(model)
        self.preloaded[key] = model
        try:
            yield
        finally:
            self.preloaded.pop(key, None)

    async def follow(self, wanted: Mapping[str, SlotModel]) -> list[str]:
        """Make each slot serve what `wanted` names; answers what could not be loaded.

        A slot that fails keeps its model; only A with nothing to keep raises (at start)."""
        failed: list[str] = []
        for variant in VARIANTS:
            try:
                await self._follow(variant, wanted.get(variant))
            except EdgeserveError as error:
                if variant == CURRENT and variant not in self.models:
                    raise
                failed.append(f"{variant}: {error.message}")
        return failed

    async def _follow(self, variant: Variant, wanted: SlotModel | None) -> None:
        current = self.models.get(variant)
        if wanted is None:
            self.models.pop(variant, None)
            return
        if current is not None and identity(current) == identity(wanted):
            return
        key = identity(wanted)
        serving = next((m for m in self.models.values() if identity(m) == key), None)
        self.swap(variant, serving or self.preloaded.get(key) or await self.load(wanted))

    def swap(self, variant: Variant, model: Model) -> None:
        previous = self.models.get(variant)
        self.models[variant] = model
        if previous is not None and previous.version != model.version:
            metrics.model_info.labels(variant, previous.name, previous.version).set(0)
        metrics.model_info.labels(variant, model.name, model.version).set(1)

    async def warm(self, executor: Executor, runs: int) -> dict[str, dict[str, float]]:
        """Run each slot's model `runs` times on `executor`: milliseconds taken, per slot."""
        loop = asyncio.get_running_loop()
        report: dict[str, dict[str, float]] = {}
        for variant in VARIANTS:
            model = self.models.get(variant)
            if model is not None:
                elapsed_ms = await loop.run_in_executor(executor, model.warm, runs)
                report[variant] = {"runs": runs, "ms": round(elapsed_ms, 3)}
        return report

    def close(self) -> None:
        self.loader.shutdown(wait=False, cancel_futures=True)
