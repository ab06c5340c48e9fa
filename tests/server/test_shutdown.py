"""Graceful shutdown: on SIGTERM in-flight requests finish, logs flush, the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx

from tests.support.images import image_b64
from tests.support.metrics import metric_sum
from tests.support.server import base_env, start_server, stop_server
from tests.support.waiting import wait_until_async

# A large image at the largest img_size keeps each request busy for a while.
SLOW = {"image_b64": image_b64((255, 0, 0), size=1500), "img_size": 2048}


async def burst_then_sigterm(server, total: int) -> list[int | str]:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

        async def one() -> int | str:
            try:
                return (await client.post("/v1/infer", json=SLOW)).status_code
            except httpx.TransportError as error:
                return type(error).__name__

        tasks = [asyncio.create_task(one()) for _ in range(total)]

        def in_flight() -> float:
            assert not any(task.done() for task in tasks), "requests ended before the signal"
            return metric_sum(server, "edgeserve_inflight_requests")

        # Signal only once every request is accepted and being worked on, not before or after.
        await wait_until_async(
            f"{total} requests in flight", in_flight, lambda n: n >= total, interval=0.01
        )
        os.kill(server.process.pid, signal.SIGTERM)
        return await asyncio.gather(*tasks)


def test_sigterm_lets_every_accepted_request_finish_and_exits_0():
    server = start_server(base_env())
    try:
        results = asyncio.run(burst_then_sigterm(server, total=30))
        exit_code = server.process.wait(30)
    finally:
        stop_server(server)
    assert results == [200] * 30, results
    assert exit_code == 0, server.output()[-3000:]
    assert '"event": "worker_stopped"' in server.output()
    assert "Traceback" not in server.output()
