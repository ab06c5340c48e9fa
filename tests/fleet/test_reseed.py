"""The sync loop on a Redis that lost the state: the highest generation the fleet held returns."""

from __future__ import annotations

import asyncio

from edgeserve.state.redis_store import RedisStore
from edgeserve.state.schema import RuntimeState, SlotModel
from edgeserve.state.sync import StateSync
from tests.support.redis import RedisServer
from tests.support.waiting import wait_until_async


class Worker:
    """What the sync loop needs of a worker: the state it serves and a way to apply another."""

    def __init__(self, url: str, key: str, generation: int):
        model_a = SlotModel(f"/models/{'a' * 64}/vA.onnx", "a" * 64)
        self.state = RuntimeState(1.0, 0.0, False, False, True, {"A": model_a}, generation)
        self.sync = StateSync(
            RedisStore(url, key=key), apply=self.apply, current=lambda: self.state
        )

    async def apply(self, state: RuntimeState) -> None:
        if state.generation > self.state.generation:
            self.state = state


def test_of_workers_finding_the_store_empty_the_highest_generation_is_what_remains(
    shared_redis: RedisServer,
):
    async def run() -> tuple[list[int], int]:
        workers = [Worker(shared_redis.url, "test:reseed", g) for g in (3, 9, 5)]
        loops = [asyncio.create_task(w.sync.follow()) for w in workers]
        try:
            await wait_until_async(
                "every worker to hold generation 9",
                lambda: [w.state.generation for w in workers],
                lambda generations: set(generations) == {9},
            )
            stored = await workers[0].sync.read()
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            for worker in workers:
                await worker.sync.store.close()
        return [w.state.generation for w in workers], stored.generation if stored else -1

    assert asyncio.run(run()) == ([9, 9, 9], 9)
