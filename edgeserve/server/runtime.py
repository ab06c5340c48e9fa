"""One worker's live serving: the slots, the state it has been handed, inference, shadow, guard.

The state itself (schema, stores, sync loop, commits) lives in edgeserve.state; this worker only
applies what it is handed, by `apply`, whether the change came from its own admin request or
from another worker through the store.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
from PIL.Image import Image

from edgeserve.errors import EdgeserveError, ModelLoadError, StateUnavailable
from edgeserve.inference.batching import BatcherPool
from edgeserve.inference.model import Model, Prediction
from edgeserve.inference.preprocess import decode_image, draft_size, to_tensor
from edgeserve.inference.recent import RecentInputs, verify_on
from edgeserve.inference.slots import VARIANTS, Slots, load_warm
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.server.payload import image_bytes
from edgeserve.settings import Settings
from edgeserve.state.model_store import ModelStore
from edgeserve.state.schema import InvalidState, Quarantine, RuntimeState, SlotModel
from edgeserve.state.store import StateStore, StoreUnavailable
from edgeserve.state.sync import StateSync
from edgeserve.traffic.canary import CanaryGuard, GuardLimits
from edgeserve.traffic.compare import NO_COMMON_LABEL, compare


def warm_decoders() -> None:
    """The first PNG and JPEG decodes load Pillow's plugins; pay that before /ready, not later."""
    for fmt in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        PIL.Image.new("RGB", (8, 8)).save(buffer, fmt)
        decode_image(buffer.getvalue(), 64)


@dataclass
class Classified:
    predictions: list[Prediction]
    image: Image
    decode_seconds: float
    inference_seconds: float
    run_seconds: float
    """The session run alone (its CPU time with one ORT thread): what the canary guard compares."""


def identity(model: SlotModel) -> tuple[str, str]:
    """What makes two slot models the same: their bytes and their name (the path may differ)."""
    return model.version, Path(model.path).name


class Runtime:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        start_state: RuntimeState,
        model_store: ModelStore,
    ):
        self.settings = settings
        self.start_state = start_state
        self.model_store = model_store
        self.sync = StateSync(store, apply=self.apply, current=lambda: self.state)
        self.slots = Slots()
        self.state = start_state
        self.in_sync = True
        self.failed_generation: int | None = None
        self.preloaded: dict[tuple[str, str], Model] = {}
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
        self.recent_inputs = RecentInputs()
        self.cpu_timed = settings.session_threads() == 1
        self.tripped_b: str | None = None
        """B's sha256 this worker's guard rolled back: no user reaches it while the commit runs."""

    # --- models and state -------------------------------------------------------------

    async def load_model(self, wanted: SlotModel) -> Model:
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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.loader,
            lambda: load_warm(
                path,
                threads=self.settings.session_threads(),
                warmup_runs=self.settings.warmup_runs,
                expected_sha256=wanted.version,
            ),
        )

    async def verify(self, model: Model) -> None:
        """Refuse (422) a model that fails on this worker's recent real inputs."""
        samples = self.recent_inputs.snapshot()
        if samples:
            await asyncio.get_running_loop().run_in_executor(self.loader, verify_on, model, samples)

    @contextmanager
    def preloading(self, model: Model) -> Iterator[None]:
        """Offer a model loaded before a commit to the `apply` that follows it."""
        key = (model.sha256, model.path.name)
        self.preloaded[key] = model
        try:
            yield
        finally:
            self.preloaded.pop(key, None)

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.loader, warm_decoders)
        try:
            stored = await self.sync.read()
        except (StoreUnavailable, InvalidState) as error:
            log.error("state_read_failed", error=str(error))
            stored = None
        try:
            await self.apply(stored or self.start_state, force=True)
        except EdgeserveError:
            if stored is None:
                raise
            # This host cannot serve the stored state's model A: serve the start state and
            # keep retrying the stored one (the sync loop sees a newer generation).
            await self.apply(self.start_state, force=True)
            self.mark_in_sync(False)
        self.ready = True
        log.info("models_ready", models=self.slots.describe(), generation=self.state.generation)

    def wants(self, state: RuntimeState) -> bool:
        """A newer generation, or the same one again while it is not fully applied."""
        if state.generation != self.state.generation:
            return state.generation > self.state.generation
        return not self.in_sync

    async def apply(self, state: RuntimeState, *, force: bool = False) -> None:
        """Make this worker serve `state`: load what changed, then swap it in.

        A slot whose model cannot be loaded keeps its previous model and the worker reports
        itself out of sync; only a missing A with nothing to keep raises (at start)."""
        async with self.apply_lock:
            if not force and not self.wants(state):
                return
            failed: list[str] = []
            for variant in VARIANTS:
                wanted = state.models.get(variant)
                current = self.slots.get(variant)
                if wanted is None:
                    self.slots.clear(variant)
                    continue
                if current and (current.sha256, current.path.name) == identity(wanted):
                    continue
                model = self.preloaded.get(identity(wanted))
                if model is None:
                    try:
                        model = await self.load_model(wanted)
                    except EdgeserveError as error:
                        if current is None and variant == "A":
                            raise
                        failed.append(f"{variant}: {error.message}")
                        continue
                self.swap(variant, model)
            self.state = state
            if state.quarantine is not None and state.quarantine.version == self.tripped_b:
                self.tripped_b = None  # the rollback landed: the state keeps B out from now on
            self.report_apply(state, failed)
            self.publish_state()

    def report_apply(self, state: RuntimeState, failed: list[str]) -> None:
        if failed and self.failed_generation != state.generation:
            self.failed_generation = state.generation
            metrics.state_apply_failures.inc()
            log.error(
                "state_apply_failed",
                generation=state.generation,
                failed=failed,
                serving=self.slots.describe(),
            )
        elif not failed and not self.in_sync:
            log.info("state_in_sync", generation=state.generation)
        self.mark_in_sync(not failed)

    def mark_in_sync(self, in_sync: bool) -> None:
        self.in_sync = in_sync
        metrics.state_in_sync.set(int(in_sync))

    def swap(self, variant: str, model: Model) -> None:
        previous = self.slots.swap(variant, model)
        if previous is not None and previous.version != model.version:
            metrics.model_info.labels(variant, previous.name, previous.version).set(0)
        metrics.model_info.labels(variant, model.name, model.version).set(1)
        if variant == "B":
            self.guard.reset()

    def publish_state(self) -> None:
        share_a = self.state.ab_weight_a / (self.state.ab_weight_a + self.state.ab_weight_b)
        metrics.ab_weight.labels("A").set(share_a)
        metrics.ab_weight.labels("B").set(1.0 - share_a)
        metrics.feature_enabled.labels("shadow").set(int(self.state.shadow_enabled))
        metrics.feature_enabled.labels("canary").set(int(self.state.canary_enabled))
        metrics.feature_enabled.labels("sticky").set(int(self.state.sticky_cookie))
        metrics.state_generation.set(self.state.generation)

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

    def _prepare(
        self, model: Model, upload: str | bytes, img_size: tuple[int, int]
    ) -> tuple[Image, np.ndarray]:
        data = image_bytes(upload)
        draft = draft_size(model.meta, img_size) if self.settings.jpeg_draft else None
        image = decode_image(data, self.settings.max_image_pixels, draft)
        self.recent_inputs.offer(img_size, image)
        return image, to_tensor(image, model.meta, img_size)

    def _classify(
        self, model: Model, upload: str | bytes, img_size: tuple[int, int], top_k: int
    ) -> Classified:
        started = time.perf_counter()
        image, tensor = self._prepare(model, upload, img_size)
        decoded, cpu_before = time.perf_counter(), time.thread_time()
        probabilities = model.run(tensor)
        finished, cpu_after = time.perf_counter(), time.thread_time()
        return Classified(
            predictions=model.top_k(probabilities[0], top_k),
            image=image,
            decode_seconds=decoded - started,
            inference_seconds=finished - decoded,
            # With one ORT thread the run happens on this thread, so its CPU time is the
            # model's own cost: waiting for the CPU or the GIL behind a neighbour's huge
            # decode is not in it (wall time is, and a client can time that).
            run_seconds=cpu_after - cpu_before if self.cpu_timed else finished - decoded,
        )

    async def classify(
        self, model: Model, upload: str | bytes, img_size: tuple[int, int], top_k: int
    ) -> Classified:
        """Base64 (JSON form), decode, preprocess and run, all off the event loop."""
        loop = asyncio.get_running_loop()
        if self.batchers is None or not model.batch_dynamic:
            return await loop.run_in_executor(
                self.executor, self._classify, model, upload, img_size, top_k
            )
        started = time.perf_counter()
        image, tensor = await loop.run_in_executor(
            self.executor, self._prepare, model, upload, img_size
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
        return model.top_k(model.run(to_tensor(image, model.meta, model.meta.input_size))[0], top_k)

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
        result = compare(primary, shadow, model.meta.labels)
        metrics.shadow_comparisons.labels(result.outcome).inc()
        if result.outcome == NO_COMMON_LABEL:
            return  # B cannot name A's answer: no agreement to measure
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
        """B is loaded and not quarantined (by the state, or by this worker's guard just now)."""
        model = self.slots.get("B")
        if model is None or model.sha256 == self.tripped_b:
            return False
        quarantine = self.state.quarantine
        return quarantine is None or quarantine.version != model.sha256

    async def observe_canary(self, variant: str, size: int, ok: bool, seconds: float) -> None:
        """One request's model outcome (`ok` False only when the session run failed)."""
        if not self.state.canary_enabled or not self.b_serves_users():
            return
        self.guard.record(variant, size, ok, seconds, time.monotonic())
        if variant != "B" and not self.guard.failure_run_due():
            return  # A's answer matters at once only when it completes B's case for the fast path
        reason = self.guard.verdict()
        if reason is None:
            return
        judged = self.slots.get("B")
        assert judged is not None  # b_serves_users() held above
        self.tripped_b = judged.sha256  # at once: no request waits for the commit to stop
        self.guard.reset()

        def roll_back(state: RuntimeState) -> RuntimeState:
            b = state.models.get("B")
            if b is None or b.version != judged.sha256:
                return state  # an operator replaced B meanwhile: the verdict was about the old one
            return state.next(
                ab_weight_b=0.0,
                ab_weight_a=state.ab_weight_a or 1.0,
                last_rollback=reason,
                quarantine=Quarantine(version=b.version, reason=reason),
            )

        try:
            # A change like any other: persisted first, so every worker (and instance) follows.
            await self.sync.commit(roll_back)
        except StateUnavailable as error:
            log.error("canary_rollback_not_persisted", reason=reason, error=error.message)
            return
        metrics.canary_rollbacks.inc()
        log.warning("canary_rollback", reason=reason, generation=self.state.generation)

    async def close(self) -> None:
        if self.shadow_tasks:
            await asyncio.wait(self.shadow_tasks, timeout=5)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.loader.shutdown(wait=False, cancel_futures=True)
