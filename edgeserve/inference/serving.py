"""The classify chain off the event loop: on an inference thread, or through a micro-batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from functools import partial

from edgeserve.inference.batching import BatcherPool
from edgeserve.inference.model import Model
from edgeserve.inference.pipeline import (
    Classified,
    Decoding,
    ImageSeen,
    Size,
    Upload,
    classify,
    prepare,
)
from edgeserve.settings import Settings


def batchers_for(settings: Settings, executor: Executor) -> BatcherPool | None:
    """Micro-batching (BATCH_MAX_SIZE > 1), for models with a dynamic batch dimension."""
    if settings.batch_max_size <= 1:
        return None
    return BatcherPool(
        executor,
        max_size=settings.batch_max_size,
        max_wait_seconds=settings.batch_max_wait_ms / 1000.0,
    )


async def classify_off_loop(
    model: Model,
    data: bytes,
    size: Size,
    top_k: int,
    *,
    decoding: Decoding,
    executor: Executor,
    batchers: BatcherPool | None,
    live: Iterable[Model],
    seen: ImageSeen | None = None,
    cpu_timed: bool = False,
) -> Classified:
    """Classify on `executor`; a model with a dynamic batch runs in a batch when batching is on.

    `live` are the models still serving: batchers of any other are let go."""
    loop = asyncio.get_running_loop()
    if batchers is None or not model.batch_dynamic:
        chain = partial(
            classify, model, data, size, top_k, decoding, seen=seen, cpu_timed=cpu_timed
        )
        return await loop.run_in_executor(executor, chain)
    started = time.perf_counter()
    image, tensor = await loop.run_in_executor(executor, prepare, model, data, size, decoding, seen)
    decoded = time.perf_counter()
    result = await batchers.get(model, tensor.shape, live=live).submit(tensor)
    return Classified(
        predictions=model.top_k(result.probabilities, top_k),
        upload=Upload(data, image),
        decode_seconds=decoded - started,
        inference_seconds=time.perf_counter() - decoded,  # the wait for the batch included
        run_seconds=result.run_seconds,
    )
