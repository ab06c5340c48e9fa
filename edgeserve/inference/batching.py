"""Dynamic micro-batching: requests that arrive together share one batched session.run.

One MicroBatcher serves one model and one input shape. Each request hands it one
preprocessed tensor (a batch of one) and awaits its own row of probabilities. A batch is
run when it holds `max_size` tensors or when `max_wait` has passed since its first one,
whichever comes first; the run happens in the executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Runnable(Protocol):
    def run(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class BatchResult:
    """One request's share of a batched run."""

    probabilities: np.ndarray  # [K], this request's row
    batch_size: int
    run_seconds: float  # the whole batch's session.run time, which this request waited for


class MicroBatcher:
    """Collects single-image tensors up to max_size or max_wait, runs them as one batch."""

    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        executor: Executor,
        *,
        max_size: int,
        max_wait_seconds: float,
    ):
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        self.run = run
        self.executor = executor
        self.max_size = max_size
        self.max_wait_seconds = max(0.0, max_wait_seconds)
        self.pending: list[tuple[np.ndarray, asyncio.Future[BatchResult]]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # batches run, for tests and metrics
        self.items = 0

    async def submit(self, tensor: np.ndarray) -> BatchResult:
        """This tensor's probabilities, computed in a batch with whatever arrives with it."""
        if tensor.shape[0] != 1:
            raise ValueError(f"submit one image at a time, got a batch of {tensor.shape[0]}")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[BatchResult] = loop.create_future()
        self.pending.append((tensor, future))
        if len(self.pending) >= self.max_size:
            self._flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.max_wait_seconds, self._flush)
        return await future

    def _flush(self) -> None:
        """Start running what is pending; called on the event loop (size reached or timer)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending = self.pending, []
        batch = [(tensor, future) for tensor, future in batch if not future.cancelled()]
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, batch: list[tuple[np.ndarray, asyncio.Future[BatchResult]]]) -> None:
        loop = asyncio.get_running_loop()
        tensors = [tensor for tensor, _ in batch]
        try:
            probabilities, seconds = await loop.run_in_executor(
                self.executor, self._run_batch, tensors
            )
        except asyncio.CancelledError:  # shutting down: no waiter is left hanging
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:  # every waiter gets the model's error
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        self.batches += 1
        self.items += len(batch)
        for row, (_, future) in enumerate(batch):
            if not future.done():  # a cancelled request (client gone) just drops its row
                future.set_result(BatchResult(probabilities[row], len(batch), seconds))

    def _run_batch(self, tensors: list[np.ndarray]) -> tuple[np.ndarray, float]:
        """Concatenate and run in the executor; answers [N, K] and the run's seconds."""
        batch = tensors[0] if len(tensors) == 1 else np.concatenate(tensors, axis=0)
        started = time.perf_counter()
        probabilities = self.run(batch)
        return probabilities, time.perf_counter() - started


class BatcherPool:
    """One MicroBatcher per (model, input shape); batchers of models no longer served go."""

    def __init__(self, executor: Executor, *, max_size: int, max_wait_seconds: float):
        self.executor = executor
        self.max_size = max_size
        self.max_wait_seconds = max_wait_seconds
        self.batchers: dict[tuple[Any, tuple[int, ...]], MicroBatcher] = {}

    def get(
        self, model: Runnable, shape: tuple[int, ...], live: Iterable[Any] = ()
    ) -> MicroBatcher:
        """The batcher for this model and input shape, made on first use."""
        key = (model, tuple(shape))
        batcher = self.batchers.get(key)
        if batcher is None:
            self._forget_idle(keep={id(m) for m in live} | {id(model)})
            batcher = MicroBatcher(
                model.run,
                self.executor,
                max_size=self.max_size,
                max_wait_seconds=self.max_wait_seconds,
            )
            self.batchers[key] = batcher
        return batcher

    def _forget_idle(self, keep: set[int]) -> None:
        """Drop idle batchers of swapped-out models, so those models can be freed."""
        for key, batcher in list(self.batchers.items()):
            if id(key[0]) not in keep and not batcher.pending and not batcher.tasks:
                del self.batchers[key]
