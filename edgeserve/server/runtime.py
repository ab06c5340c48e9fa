"""One worker's live serving state: the slots, the shared runtime state, shadow and guard."""

from __future__ import annotations

import asyncio
import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
from PIL.Image import Image

from edgeserve.errors import EdgeserveError, ModelLoadError
from edgeserve.inference.batching import BatcherPool
from edgeserve.inference.model import Model, Prediction
from edgeserve.inference.preprocess import decode_base64, decode_image, to_tensor
from edgeserve.inference.slots import VARIANTS, Slots, load_warm
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.settings import Settings
from edgeserve.traffic.canary import CanaryGuard, GuardLimits
from edgeserve.traffic.compare import compare
from edgeserve.traffic.state import RuntimeState, SlotModel, StateStore, apply_update

STATE_POLL_SECONDS = 0.2


def warm_decoders() -> None:
    """The first PNG and JPEG decodes load Pillow's plugins; pay that before /ready, not later."""
    for fmt in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        PIL.Image.new("RGB", (8, 8)).save(buffer, fmt)
        decode_image(buffer.getvalue(), 64)


class NoModelB(EdgeserveError):
    status_code = 409
    code = "no_model_b"


@dataclass
class Classified:
    predictions: list[Prediction]
    image: Image
    decode_seconds: float
    inference_seconds: float
    run_seconds: float
    """The session run alone: what the canary guard compares."""


class Runtime:
    def __init__(self, settings: Settings, store: StateStore):
        self.settings = settings
        self.store = store
        self.slots = Slots()
        self.state: RuntimeState = store.read()
        self.ready = False
        self.inflight = 0
        self.shadow_inflight = 0
        self.shadow_tasks: set[asyncio.Task[None]] = set()
        self.executor = ThreadPoolExecutor(
            max_workers=settings.inference_threads(), thread_name_prefix="infer"
        )
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load")
        # Micro-batching (BATCH_MAX_SIZE > 1) applies to models with a dynamic batch dimension.
        self.batchers = (
            BatcherPool(
                self.executor,
                max_size=settings.batch_max_size,
                max_wait_seconds=settings.batch_max_wait_ms / 1000.0,
            )
            if settings.batch_max_size > 1
            else None
        )
        self.apply_lock = asyncio.Lock()
        self.guard = CanaryGuard(
            GuardLimits(
                window=settings.canary_window,
                min_samples=settings.canary_min_samples,
                max_error_rate=settings.canary_max_error_rate,
                max_latency_ratio=settings.canary_max_latency_ratio,
                min_latency_delta_ms=settings.canary_min_latency_delta_ms,
                max_consecutive_failures=settings.canary_max_consecutive_failures,
            )
        )
        self.tripped_b: str | None = None
        """B's version the guard rolled back here; it serves no user until the state says so."""

    # --- models and state -------------------------------------------------------------

    async def load_model(self, path: Path) -> Model:
        """Load and warm off the event loop, one load at a time per worker."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.loader,
            lambda: load_warm(
                path,
                threads=self.settings.session_threads(),
                warmup_runs=self.settings.warmup_runs,
            ),
        )

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.loader, warm_decoders)
        await self.apply(self.store.read(), force=True)
        self.ready = True
        log.info("models_ready", models=self.slots.describe(), generation=self.state.generation)

    async def apply(self, state: RuntimeState, *, force: bool = False) -> None:
        """Make this worker serve `state`: load what changed, then swap it in."""
        async with self.apply_lock:
            if not force and state.generation <= self.state.generation:
                return
            for variant in VARIANTS:
                wanted = state.models.get(variant)
                current = self.slots.get(variant)
                if wanted is None:
                    self.slots.clear(variant)
                    continue
                if current and (str(current.path), current.version) == (
                    wanted.path,
                    wanted.version,
                ):
                    continue
                try:
                    model = await self.load_model(Path(wanted.path))
                except EdgeserveError as error:
                    log.error(
                        "model_load_failed", variant=variant, path=wanted.path, error=error.message
                    )
                    if current is None and variant == "A":
                        raise
                    continue
                self.swap(variant, model)
            self.state = state
            self.publish_state()

    def swap(self, variant: str, model: Model) -> None:
        previous = self.slots.swap(variant, model)
        if previous is not None and previous.version != model.version:
            metrics.model_info.labels(variant, previous.name, previous.version).set(0)
        metrics.model_info.labels(variant, model.name, model.version).set(1)
        if variant == "B":
            self.guard.reset()
            self.tripped_b = None  # an operator's load of B is a fresh start

    def publish_state(self) -> None:
        share_a = self.state.ab_weight_a / (self.state.ab_weight_a + self.state.ab_weight_b)
        metrics.ab_weight.labels("A").set(share_a)
        metrics.ab_weight.labels("B").set(1.0 - share_a)
        metrics.feature_enabled.labels("shadow").set(int(self.state.shadow_enabled))
        metrics.feature_enabled.labels("canary").set(int(self.state.canary_enabled))
        metrics.feature_enabled.labels("sticky").set(int(self.state.sticky_cookie))
        metrics.state_generation.set(self.state.generation)

    async def watch_state(self) -> None:
        """Pick up changes other workers (or other processes) wrote to the state file."""
        signature = self.store.signature()
        while True:
            try:
                await asyncio.sleep(STATE_POLL_SECONDS)
            except asyncio.CancelledError:
                return  # shutting down: a quiet end, not an error

            try:
                current = self.store.signature()
                if current == signature:
                    continue
                signature = current
                await self.apply(self.store.read())
            except (OSError, ValueError, KeyError, EdgeserveError) as error:
                log.error("state_sync_failed", error=str(error).splitlines()[0][:200])

    async def commit(self, change: Any) -> RuntimeState:
        """Write a change to the shared state and apply it here at once."""
        loop = asyncio.get_running_loop()
        new_state = await loop.run_in_executor(self.loader, self.store.update, change)
        await self.apply(new_state)
        return new_state

    async def update_config(self, update: dict[str, Any]) -> RuntimeState:
        apply_update(self.state, update)  # refuse before taking the lock; nothing changes
        return await self.commit(lambda state: apply_update(state, update))

    async def promote(self) -> tuple[dict[str, str], dict[str, str]]:
        candidate = self.slots.get("B")
        if candidate is None:
            raise NoModelB("no model is loaded in slot B: load one with POST /admin/models/B")
        previous = self.slots.get("A")
        promoted = await self.load_model(candidate.path)
        self.swap("A", promoted)
        await self.commit(
            lambda state: replace(
                state,
                ab_weight_a=1.0,
                ab_weight_b=0.0,
                models={**state.models, "A": SlotModel(str(promoted.path), promoted.version)},
            )
        )
        return (previous.describe() if previous else {}), promoted.describe()

    def resolve_in_model_dir(self, requested: str) -> Path:
        """Hot loads may only read from MODEL_DIR; relative paths are taken inside it."""
        model_dir = self.settings.model_dir.resolve()
        candidate = Path(requested)
        if not candidate.is_absolute():
            candidate = model_dir / candidate
        resolved = candidate.resolve()
        if not resolved.is_relative_to(model_dir):
            raise ModelLoadError(
                f"{requested} is outside the models folder {model_dir}: "
                "copy the model there (or set MODEL_DIR) and load it by name",
                code="path_not_allowed",
            )
        return resolved

    async def load_into(self, variant: str, requested: str) -> Model:
        model = await self.load_model(self.resolve_in_model_dir(requested))
        self.swap(variant, model)
        await self.commit(
            lambda state: replace(
                state, models={**state.models, variant: SlotModel(str(model.path), model.version)}
            )
        )
        return model

    async def warmup(self) -> dict[str, dict[str, float]]:
        loop = asyncio.get_running_loop()
        report: dict[str, dict[str, float]] = {}
        for variant in VARIANTS:
            model = self.slots.get(variant)
            if model is None:
                continue
            runs = max(1, self.settings.warmup_runs)
            elapsed_ms = await loop.run_in_executor(self.executor, model.warm, runs)
            report[variant] = {"runs": runs, "ms": round(elapsed_ms, 3)}
        return report

    # --- inference ------------------------------------------------------------------

    def _prepare(self, model: Model, image_b64: str, img_size: int) -> tuple[Image, np.ndarray]:
        data = decode_base64(image_b64)
        image = decode_image(data, self.settings.max_image_pixels, target_size=img_size)
        return image, to_tensor(image, model.meta, img_size)

    def _classify(self, model: Model, image_b64: str, img_size: int, top_k: int) -> Classified:
        started = time.perf_counter()
        image, tensor = self._prepare(model, image_b64, img_size)
        decoded = time.perf_counter()
        probabilities = model.run(tensor)
        finished = time.perf_counter()
        return Classified(
            predictions=model.top_k(probabilities[0], top_k),
            image=image,
            decode_seconds=decoded - started,
            inference_seconds=finished - decoded,
            run_seconds=finished - decoded,
        )

    async def classify(self, model: Model, image_b64: str, img_size: int, top_k: int) -> Classified:
        """Base64, decode, preprocess and run, all off the event loop."""
        loop = asyncio.get_running_loop()
        if self.batchers is None or not model.batch_dynamic:
            return await loop.run_in_executor(
                self.executor, self._classify, model, image_b64, img_size, top_k
            )
        started = time.perf_counter()
        image, tensor = await loop.run_in_executor(
            self.executor, self._prepare, model, image_b64, img_size
        )
        decoded = time.perf_counter()
        batcher = self.batchers.get(model, tensor.shape, live=self.slots.models.values())
        result = await batcher.submit(tensor)
        return Classified(
            predictions=model.top_k(result.probabilities, top_k),
            image=image,
            decode_seconds=decoded - started,
            inference_seconds=time.perf_counter() - decoded,  # the wait for the batch included
            run_seconds=result.run_seconds,
        )

    def _run_shadow(self, model: Model, image: Image, top_k: int) -> list[Prediction]:
        size = model.meta.fixed_size or model.meta.default_img_size
        return model.top_k(model.run(to_tensor(image, model.meta, size))[0], top_k)

    def start_shadow(
        self, image: Image, primary: list[Prediction], top_k: int, trace_id: str
    ) -> None:
        """Run B on what A answered, off the response path; bounded, never failing the request."""
        model = self.slots.get("B")
        if model is None:
            return
        if self.shadow_inflight >= self.settings.shadow_max_inflight:
            metrics.shadow_dropped.inc()
            return
        self.shadow_inflight += 1
        task = asyncio.create_task(self._shadow(model, image, primary, top_k, trace_id))
        self.shadow_tasks.add(task)
        task.add_done_callback(self.shadow_tasks.discard)

    async def _shadow(
        self, model: Model, image: Image, primary: list[Prediction], top_k: int, trace_id: str
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            shadow = await loop.run_in_executor(
                self.executor, self._run_shadow, model, image, top_k
            )
        except Exception as error:  # a failing B must never reach the user
            metrics.shadow_errors.inc()
            log.warning("shadow_failed", trace_id=trace_id, error=str(error).splitlines()[0][:200])
            return
        finally:
            self.shadow_inflight -= 1
        result = compare(primary, shadow)
        metrics.shadow_comparisons.labels("agree" if result.agree else "disagree").inc()
        metrics.shadow_topk_overlap.observe(result.topk_overlap)
        metrics.shadow_score_delta.observe(result.score_delta)
        if not result.agree:
            log.info(
                "shadow_disagreement",
                trace_id=trace_id,
                a_top1=primary[0].label,
                a_score=round(primary[0].score, 4),
                b_top1=shadow[0].label,
                b_score=round(shadow[0].score, 4),
                topk_overlap=round(result.topk_overlap, 3),
            )

    def b_serves_users(self) -> bool:
        """B is loaded and not rolled back by this worker's guard."""
        model = self.slots.get("B")
        return model is not None and model.version != self.tripped_b

    async def observe_canary(self, variant: str, size: int, ok: bool, seconds: float) -> None:
        """One request's model outcome (`ok` False only when the session run failed)."""
        if not self.state.canary_enabled or not self.b_serves_users():
            return
        self.guard.record(variant, size, ok, seconds, time.monotonic())
        if variant != "B":
            return
        reason = self.guard.verdict()
        if reason is None:
            return
        model = self.slots.get("B")
        self.tripped_b = model.version if model else None  # at once, before the commit awaits
        self.guard.reset()
        await self.commit(
            lambda state: replace(
                state,
                ab_weight_b=0.0,
                ab_weight_a=state.ab_weight_a or 1.0,
                last_rollback=reason,
            )
        )
        metrics.canary_rollbacks.inc()
        log.warning("canary_rollback", reason=reason, generation=self.state.generation)

    async def close(self) -> None:
        if self.shadow_tasks:
            await asyncio.wait(self.shadow_tasks, timeout=5)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.loader.shutdown(wait=False, cancel_futures=True)
