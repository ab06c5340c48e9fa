"""Several real `edgeserve serve` instances on one real Redis, and what each worker serves."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.redis import RedisServer
from tests.support.server import (
    ADMIN_TOKEN,
    Server,
    base_env,
    start_server,
    stop_server,
    wait_until_ready,
)
from tests.support.waiting import wait_until_async

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_request_ids = itertools.count()


def fleet_env(redis: RedisServer, **overrides: str) -> dict[str, str]:
    return base_env(**{"STATE_URL": redis.url, "WORKERS": "2", **overrides})


def start_instances(redis: RedisServer, count: int, **overrides: str) -> list[Server]:
    """`count` instances started at once (their model loads overlap), each waited for."""
    servers = [start_server(fleet_env(redis, **overrides), wait_ready=False) for _ in range(count)]
    try:
        for server in servers:
            wait_until_ready(server)
    except BaseException:
        for server in servers:
            stop_server(server)
        raise
    return servers


@contextmanager
def running_fleet(redis: RedisServer, count: int, **overrides: str) -> Iterator[list[Server]]:
    servers = start_instances(redis, count, **overrides)
    try:
        yield servers
    finally:
        for server in servers:
            stop_server(server)


@dataclass
class Sample:
    """One GET /admin/config over a new connection: who answered, when, and what it served."""

    instance: int
    request_id: str
    received: float
    config: dict[str, Any]


@dataclass
class WorkerLog:
    """Which worker (pid) answered each request, read from an instance's request log."""

    server: Server
    offset: int = 0
    worker_of: dict[str, int] = field(default_factory=dict)

    def refresh(self) -> None:
        with open(self.server.output_path, "rb") as output:
            output.seek(self.offset)
            chunk = output.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            if not line.startswith(b"{") or b'"route": "/admin/config"' not in line:
                continue
            record = json.loads(line)
            if "worker" in record and "trace_id" in record:
                self.worker_of[record["trace_id"]] = record["worker"]


async def sample_config(client: httpx.AsyncClient, instance: int) -> Sample:
    """A new connection per request, so the kernel hands it to either worker."""
    request_id = f"fleet-{next(_request_ids)}"
    response = await client.get(
        "/admin/config", headers={**AUTH, "X-Request-ID": request_id, "Connection": "close"}
    )
    response.raise_for_status()
    return Sample(instance, request_id, time.monotonic(), response.json())


class Watcher:
    """Polls every instance over new connections, and tells each worker's view apart."""

    def __init__(self, servers: list[Server], pollers_per_instance: int = 2):
        self.servers = servers
        self.logs = [WorkerLog(server) for server in servers]
        self.samples: list[Sample] = []
        self.pollers_per_instance = pollers_per_instance
        self.tasks: list[asyncio.Task[None]] = []
        self.clients: list[httpx.AsyncClient] = []

    async def __aenter__(self) -> Watcher:
        for index, server in enumerate(self.servers):
            client = httpx.AsyncClient(
                base_url=server.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
            )
            self.clients.append(client)
            for _ in range(self.pollers_per_instance):
                self.tasks.append(asyncio.create_task(self._poll(client, index)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.clients:
            await client.aclose()

    async def _poll(self, client: httpx.AsyncClient, instance: int) -> None:
        while True:
            self.samples.append(await sample_config(client, instance))

    def by_worker(self, since: float) -> dict[tuple[int, int], list[Sample]]:
        """Samples received after `since`, per (instance, worker pid), in arrival order."""
        for log in self.logs:
            log.refresh()
        seen: dict[tuple[int, int], list[Sample]] = {}
        for sample in self.samples:
            worker = self.logs[sample.instance].worker_of.get(sample.request_id)
            if worker is not None and sample.received >= since:
                seen.setdefault((sample.instance, worker), []).append(sample)
        return seen

    async def until_every_worker_serves(
        self, generation: int, since: float, workers: int, timeout: float = 10.0
    ) -> dict[tuple[int, int], float]:
        """Seconds from `since` until each worker first answered with `generation` or later."""

        def first_seen() -> dict[tuple[int, int], float]:
            for task in self.tasks:
                if task.done():
                    task.result()  # a poller that failed: its error, not a timeout later
            return {
                worker: next(s.received for s in samples if s.config["generation"] >= generation)
                - since
                for worker, samples in self.by_worker(since).items()
                if any(s.config["generation"] >= generation for s in samples)
            }

        return await wait_until_async(
            f"{workers} workers to serve generation {generation}",
            first_seen,
            lambda seen: len(seen) >= workers,
            timeout=timeout,
        )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
