"""One worker's serving, composed: its models, the state it follows, inference, shadow, guard.

The state (schema, stores, sync loop, commits) lives in edgeserve.state; a worker only applies
what it is handed, by `apply`, whether the change came from its own admin request or another's.
"""

from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from edgeserve.errors import EdgeserveError
from edgeserve.inference.model import Model
from edgeserve.inference.pipeline import Classified, Decoding, Size, warm_decoders
from edgeserve.inference.recent import RecentInputs
from edgeserve.inference.registry import ModelRegistry
from edgeserve.inference.serving import batchers_for, classify_off_loop
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.settings import Settings
from edgeserve.state.disagreement_store import DisagreementStore
from edgeserve.state.model_store import ModelStore
from edgeserve.state.retention import LOADING, Plan, collect, reasons_to_keep
from edgeserve.state.schema import InvalidState, RuntimeState
from edgeserve.state.shared_models import UNREACHABLE, short
from edgeserve.state.store import StateStore, StoreUnavailable
from edgeserve.state.sync import StateSync
from edgeserve.traffic.canary_watch import CanaryWatch, guard_limits
from edgeserve.traffic.capture import DisagreementCapture
from edgeserve.traffic.class_flips import SinceCandidate
from edgeserve.traffic.compare import OUTCOMES
from edgeserve.traffic.paired_feedback import AnswerStore
from edgeserve.traffic.shadow import Shadow
from edgeserve.traffic.shadow_answers import ShadowAnswers
from edgeserve.traffic.step_clients import StepClients
from edgeserve.variants import CANDIDATE, CURRENT

CANDIDATE_THREADS = 4
"""Threads per worker for B's requests and shadow runs (decode, preprocess, wait for its
process, which runs one input at a time)."""


class Runtime:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        start_state: RuntimeState,
        model_store: ModelStore,
        disagreements: DisagreementStore,
        shadow_answers: AnswerStore,
    ):
        self.settings = settings
        self.start_state = start_state
        self.state = start_state
        self.sync = StateSync(
            store, apply=self.apply, current=lambda: self.state, on_status=self.report_in_sync
        )
        self.registry = ModelRegistry(settings, model_store, RecentInputs())
        self.executor = ThreadPoolExecutor(settings.inference_threads(), thread_name_prefix="infer")
        # B's decoding, preprocessing and waits for its own process: never on A's threads.
        self.candidate_executor = ThreadPoolExecutor(
            CANDIDATE_THREADS, thread_name_prefix="candidate"
        )
        self.batchers = batchers_for(settings, self.executor)
        self.decoding = Decoding(settings.max_image_pixels, settings.jpeg_draft)
        self.cpu_timed = settings.session_threads() == 1
        self.canary = CanaryWatch(guard_limits(settings), self.sync.commit)
        self.disagreements = disagreements
        self.capture = DisagreementCapture(disagreements, settings.capture_disagreements > 0)
        self.shadow = Shadow(
            self.candidate_executor,
            settings.shadow_max_inflight,
            self.canary.contain,
            self.capture,
            ShadowAnswers(shadow_answers),
        )
        self.class_flips = SinceCandidate()
        """Per-class flips count from the moment the current B started serving."""
        self.step_clients = StepClients()
        """Sticky clients met since the weights last changed (the share follows them)."""
        self.apply_lock = asyncio.Lock()
        self.models_in_sync = True
        """Every model the served state names is loaded here."""
        self.failed_generation: int | None = None
        self.ready = False
        self.inflight = 0
        self.quarantining: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        # What is imported and built by now lives as long as the process: out of the
        # collector's sight, a full collection no longer walks it while serving, nor for a
        # quarter of a second at exit. Models load after, so a replaced one is still collected.
        gc.freeze()
        await asyncio.get_running_loop().run_in_executor(self.registry.loader, warm_decoders)
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
        log.info("models_ready", models=self.registry.describe(), generation=self.state.generation)

    @property
    def in_sync(self) -> bool:
        """Serving what the store holds: its document is valid and every model it names is
        loaded here (`in_sync` in GET /admin/config, `edgeserve_state_in_sync`)."""
        return self.models_in_sync and self.sync.store_invalid is None

    def wants(self, state: RuntimeState) -> bool:
        """Any other document but one this state was written on top of (a late read, or a store
        that lost changes: the sync writes this state back instead), or the same one again
        while it is not fully applied."""
        if state.same_as(self.state):
            return not self.models_in_sync
        return not self.state.follows(state)

    async def apply(self, state: RuntimeState, *, force: bool = False) -> None:
        """Make this worker serve `state`: load what changed, then swap it in.

        A slot whose model cannot be loaded keeps its previous model and the worker reports
        itself out of sync; only a missing A with nothing to keep raises (at start)."""
        async with self.apply_lock:
            if not force and not self.wants(state):
                return
            candidate = self.registry.get(CANDIDATE)
            failed = await self.registry.follow(state.models)
            if self.registry.get(CANDIDATE) is not candidate:
                self.canary.candidate_changed()
                self.shadow.class_labels.restart()
                b_version = b.version if (b := self.registry.get(CANDIDATE)) else None
                self.class_flips.restart(b_version, metrics.class_pair_counts(b_version))
            if (
                state.weights != self.state.weights
                or state.sticky_cookie != self.state.sticky_cookie
            ):
                self.step_clients.restart()
                metrics.step_clients.set(0)
            self.state = state
            self.canary.state_applied(state)
            self.report_apply(state, failed)
            metrics.publish_state(state)
            metrics.forget_untracked(self.tracked_versions())
            self.zero_shadow_pair()
            self.quarantine_unsafe(state)
            if not failed:
                await self.collect_models(dry_run=False)

    async def collect_models(self, *, dry_run: bool) -> Plan:
        """Remove the kept models retention lets go (state.retention), off the event loop; a
        folder that cannot be read is logged, never a failed change."""
        reasons = reasons_to_keep(self.state, self.registry.serving_versions())
        try:
            decided = await asyncio.to_thread(
                collect,
                self.registry.model_store.folder,
                reasons,
                self.settings.model_upload_grace_seconds,
                dry_run=dry_run,
            )
        except OSError as error:
            log.warning("model_collection_failed", error=error.strerror or str(error))
            return Plan()
        shared = self.registry.shared
        if shared is not None:
            try:
                # What a load here holds stays in Redis too: the load shares it next.
                loading = {v: why for v, why in decided.kept.items() if why == LOADING}
                removed_shared = await asyncio.to_thread(
                    shared.collect,
                    reasons | loading,
                    self.settings.model_upload_grace_seconds,
                    dry_run=dry_run,
                )
                decided = replace(decided, removed_shared=removed_shared)
            except UNREACHABLE as error:
                log.warning("shared_model_collection_failed", error=str(error))
        if (decided.removed or decided.removed_shared) and not dry_run:
            log.info(
                "models_collected",
                removed=[e.describe() for e in decided.removed],
                removed_from_redis=[short(v) for v in decided.removed_shared],
            )
        return decided

    def zero_shadow_pair(self) -> None:
        """The comparison series of the A and B served now, at 0 before their first one."""
        a, b = self.registry.get(CURRENT), self.registry.get(CANDIDATE)
        if a is not None and b is not None and a.version != b.version:
            metrics.zero_shadow_outcomes((a.version, b.version), OUTCOMES)

    def quarantine_unsafe(self, state: RuntimeState) -> None:
        """A B that admission refused as unsafe (at start, or from another instance's change)
        is quarantined for the fleet, so no instance keeps trying to serve it."""
        b = state.models.get(CANDIDATE)
        reason = self.registry.unsafe.get(b.version) if b is not None else None
        if b is not None and reason is not None:
            quarantined = state.quarantine is not None and state.quarantine.version == b.version
            if not quarantined:  # committed after this apply, which holds the apply lock
                task = asyncio.create_task(self.canary.quarantine_unsafe(b.version, reason))
                self.quarantining.add(task)  # a task nobody holds may be collected mid-way
                task.add_done_callback(self.quarantining.discard)

    def report_apply(self, state: RuntimeState, failed: list[str]) -> None:
        if failed and self.failed_generation != state.generation:
            self.failed_generation = state.generation
            metrics.state_apply_failures.inc()
            log.error(
                "state_apply_failed",
                generation=state.generation,
                failed=failed,
                serving=self.registry.describe(),
            )
        elif not failed and not self.models_in_sync:
            log.info("state_in_sync", generation=state.generation)
        self.mark_in_sync(not failed)

    def mark_in_sync(self, models_in_sync: bool) -> None:
        self.models_in_sync = models_in_sync
        self.report_in_sync()

    def report_in_sync(self) -> None:
        metrics.state_in_sync.set(int(self.in_sync))

    def tracked_versions(self) -> frozenset[str]:
        """The versions whose figures are kept: A's, B's and the previous A's as the state
        names them, and a model a slot here still serves while this worker is out of sync."""
        served = {model.version for model in self.registry.models.values()}
        return metrics.tracked_versions(self.state) | served

    def met_client(self, client_id: str | None) -> None:
        if self.step_clients.saw(client_id):
            metrics.step_clients.set(self.step_clients.count)

    def serving_b(self, state: RuntimeState) -> Model | None:
        """B's model while it serves users under `state`, else None."""
        model = self.registry.get(CANDIDATE)
        return model if self.canary.serves_users(model, state) else None

    def executor_for(self, model: Model) -> ThreadPoolExecutor:
        return self.candidate_executor if model.isolated else self.executor

    async def classify(self, model: Model, data: bytes, size: Size, top_k: int) -> Classified:
        """Decode, preprocess and run, all off the event loop (batched where it applies)."""
        return await classify_off_loop(
            model,
            data,
            size,
            top_k,
            decoding=self.decoding,
            executor=self.executor_for(model),
            batchers=self.batchers,
            live=self.registry.models.values(),
            seen=self.registry.recent_inputs.offer,
            cpu_timed=self.cpu_timed,
        )

    async def warmup(self) -> dict[str, dict[str, float]]:
        return await self.registry.warm(self.executor_for, max(1, self.settings.warmup_runs))

    async def close(self) -> None:
        self.registry.close()  # first: a B run still waiting on its process ends at once
        await self.shadow.close()
        await self.capture.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.candidate_executor.shutdown(wait=False, cancel_futures=True)
