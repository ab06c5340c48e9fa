"""Shadow traffic: B runs on the image A answered, off the response path, and the two answers
are compared. Bounded (SHADOW_MAX_INFLIGHT, then dropped and counted) and never failing the
request: the user's answer never depends on B."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from edgeserve.errors import ModelHazard, one_line
from edgeserve.inference.model import Model, Prediction
from edgeserve.inference.pipeline import Upload, classify_image
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.state.disagreement_store import Answer
from edgeserve.traffic.capture import DisagreementCapture
from edgeserve.traffic.class_flips import ClassLabels
from edgeserve.traffic.compare import NO_COMMON_LABEL, compare
from edgeserve.traffic.shadow_answers import ShadowAnswers

Contained = Callable[[Model, ModelHazard | None], Awaitable[None]]
"""Told of every shadow run of B: whether it showed the model unsafe."""


class Shadow:
    def __init__(
        self,
        executor: Executor,
        max_inflight: int,
        contained: Contained,
        capture: DisagreementCapture,
        answers: ShadowAnswers,
    ):
        self.executor = executor
        self.max_inflight = max_inflight
        self.contained = contained
        self.capture = capture
        self.answers = answers
        """B's answers kept for feedback on the A answers they shadowed."""
        self.inflight = 0
        self.class_labels = ClassLabels()
        self.tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        model: Model | None,
        upload: Upload,
        primary: list[Prediction],
        top_k: int,
        trace_id: str,
        a_version: str,
        feedback_nonce: str | None = None,
    ) -> None:
        """Run `model` (B) on what A's version `a_version` answered, unless there is none, it is
        that very version (it would agree with itself) or too many are running. B's answer is
        kept under `feedback_nonce` for feedback on A's answer."""
        self.class_labels.count(primary[0].label)
        if model is None or model.version == a_version:
            return
        if self.inflight >= self.max_inflight:
            metrics.shadow_dropped.inc()
            return
        self.inflight += 1
        task = asyncio.create_task(
            self._run(model, upload, primary, top_k, trace_id, a_version, feedback_nonce)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(
        self,
        model: Model,
        upload: Upload,
        primary: list[Prediction],
        top_k: int,
        trace_id: str,
        a_version: str,
        feedback_nonce: str | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        size = model.meta.input_size
        try:
            shadow = await loop.run_in_executor(
                self.executor, classify_image, model, upload.image, size, top_k
            )
        except Exception as error:  # a failing B must never reach the user
            self.inflight -= 1
            metrics.shadow_errors.inc()
            log.warning("shadow_failed", trace_id=trace_id, error=one_line(error, limit=200))
            if isinstance(error, ModelHazard):
                await self.contained(model, error)
            return
        self.inflight -= 1
        await self.contained(model, None)
        if feedback_nonce is not None:  # before the comparison counts: feedback may follow it
            await self.answers.remember(feedback_nonce, model.version, shadow[0].label)
        result = compare(primary, shadow, model.meta.label_index)
        versions = (a_version, model.version)
        metrics.shadow_comparisons.labels(*versions, result.outcome).inc()
        pair = self.class_labels.pair(primary[0].label, shadow[0].label)
        metrics.shadow_class_pairs.labels(*pair, model.version).inc()
        if result.outcome == NO_COMMON_LABEL:
            return  # B cannot name A's answer: no agreement to measure
        metrics.shadow_topk_overlap.labels(*versions).observe(result.topk_overlap)
        metrics.shadow_score_delta.labels(*versions).observe(result.score_delta)
        if not result.agree:
            log.info(
                "shadow_disagreement",
                trace_id=trace_id,
                a_version=a_version,
                b_version=model.version,
                a_top1=primary[0].label,
                a_score=round(primary[0].score, 4),
                b_top1=shadow[0].label,
                b_score=round(shadow[0].score, 4),
                topk_overlap=round(result.topk_overlap, 3),
            )
            a, b = Answer(a_version, primary), Answer(model.version, shadow)
            self.capture.offer(upload.data, a, b, trace_id)

    async def close(self) -> None:
        """Let the comparisons in flight finish, for at most five seconds."""
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
        await self.answers.close()
