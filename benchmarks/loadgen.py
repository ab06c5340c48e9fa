"""A bounded closed-loop load generator: N concurrent clients over keep-alive connections."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np


@dataclass
class LoadResult:
    """What one measured load phase saw (warm-up excluded)."""

    concurrency: int
    seconds: float
    ok: int
    errors: int
    statuses: dict[str, int]
    latencies_ms: list[float] = field(repr=False)  # successful requests only
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        return float(np.percentile(np.asarray(self.latencies_ms), q))

    @classmethod
    def merge(cls, results: list[LoadResult]) -> LoadResult:
        """Pool rounds of the same load: counts and times add, latencies join."""
        statuses: Counter[str] = Counter()
        for result in results:
            statuses.update(result.statuses)
        server = [r.server_cpu_seconds for r in results]
        return cls(
            concurrency=results[0].concurrency,
            seconds=sum(r.seconds for r in results),
            ok=sum(r.ok for r in results),
            errors=sum(r.errors for r in results),
            statuses=dict(sorted(statuses.items())),
            latencies_ms=[ms for r in results for ms in r.latencies_ms],
            client_cpu_seconds=sum(r.client_cpu_seconds for r in results),
            server_cpu_seconds=None if None in server else sum(server),  # type: ignore[arg-type]
        )

    def summary(self) -> dict[str, object]:
        return {
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "requests_ok": self.ok,
            "errors": self.errors,
            "statuses": self.statuses,
            "rps": round(self.rps, 1),
            "p50_ms": _round(self.percentile(50)),
            "p95_ms": _round(self.percentile(95)),
            "p99_ms": _round(self.percentile(99)),
            "client_cpu_seconds": round(self.client_cpu_seconds, 3),
            "server_cpu_seconds": _round(self.server_cpu_seconds),
            "server_cpu_ms_per_request": _round(self._server_ms_per_request()),
        }

    def _server_ms_per_request(self) -> float | None:
        total = sum(self.statuses.values())
        if self.server_cpu_seconds is None or not total:
            return None
        return self.server_cpu_seconds * 1000.0 / total


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


SHED_BACKOFF_SECONDS = 0.1  # a shed user waits before retrying (edgeserve says Retry-After: 1)
CLIENTS = ("httpx", "raw", "wrk")


class HttpxUser:
    """One user on its own one-connection httpx client (a shared pool of many connections
    costs httpx CPU per request that grows with the pool, and the client shares our cores)."""

    def __init__(self, url: str, path: str, body: bytes, content_type: str):
        self.client = httpx.AsyncClient(
            base_url=url,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=httpx.Timeout(30.0),
        )
        self.path, self.body = path, body
        self.headers = {"content-type": content_type}

    async def post(self) -> str:
        try:
            response = await self.client.post(self.path, content=self.body, headers=self.headers)
            await response.aread()
        except httpx.HTTPError as error:
            return type(error).__name__
        return str(response.status_code)

    async def close(self) -> None:
        await self.client.aclose()


class RawUser:
    """One user on a bare keep-alive HTTP/1.1 connection: the request bytes are built once,
    the answer is read by its Content-Length. About a tenth of httpx's CPU per request."""

    def __init__(self, url: str, path: str, body: bytes, content_type: str):
        parts = httpx.URL(url)
        self.host, self.port = parts.host, parts.port or 80
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.request = head.encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> str:
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(self.request)
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30.0)
            status = head[9:12].decode()
            length = 0
            lowered = head.lower()
            marker = lowered.find(b"\r\ncontent-length:")
            if marker >= 0:
                end = lowered.index(b"\r\n", marker + 2)
                length = int(lowered[marker + 17 : end])
            if length:
                await self.reader.readexactly(length)
            if b"\r\nconnection: close" in lowered:
                await self.close()
            return status
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            await self.close()
            return "ConnectionError"

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def _phase(
    users: list[HttpxUser | RawUser],
    seconds: float,
    max_requests: int,
    latencies: list[float],
    statuses: Counter[str],
) -> float:
    """Each user runs a closed loop until the deadline or the request cap."""
    started = time.perf_counter()
    deadline = started + seconds
    budget = [max_requests]

    async def run(user: HttpxUser | RawUser) -> None:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            sent = time.perf_counter()
            status = await user.post()
            statuses[status] += 1
            if status == "200":
                latencies.append((time.perf_counter() - sent) * 1000.0)
            elif status in ("429", "503"):
                await asyncio.sleep(SHED_BACKOFF_SECONDS)

    await asyncio.gather(*(run(user) for user in users))
    return time.perf_counter() - started


async def run_load(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    seconds: float,
    warmup_seconds: float,
    max_requests: int = 50_000,
    path: str = "/v1/infer",
    content_type: str = "application/json",
    server_cpu: Callable[[], float] | None = None,
    client: str = "httpx",
) -> LoadResult:
    """Warm up, then measure for `seconds` (or `max_requests`, whichever comes first)."""
    # wrk measures whole seconds only; the raw client warms the server up for it.
    kind = {"httpx": HttpxUser, "raw": RawUser, "wrk": RawUser}[client]
    users = [kind(url, path, body, content_type) for _ in range(concurrency)]
    try:
        if warmup_seconds > 0:
            await _phase(users, warmup_seconds, max_requests, [], Counter())
        if client == "wrk":
            from benchmarks import wrk

            await asyncio.gather(*(user.close() for user in users))
            return await asyncio.to_thread(
                wrk.measure,
                url,
                body,
                path=path,
                content_type=content_type,
                concurrency=concurrency,
                seconds=seconds,
                server_cpu=server_cpu,
            )
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        server_before = server_cpu() if server_cpu else 0.0
        cpu_before = time.process_time()
        elapsed = await _phase(users, seconds, max_requests, latencies, statuses)
        cpu = time.process_time() - cpu_before
        server_seconds = server_cpu() - server_before if server_cpu else None
    finally:
        await asyncio.gather(*(user.close() for user in users))
    ok = statuses.get("200", 0)
    return LoadResult(
        concurrency=concurrency,
        seconds=elapsed,
        ok=ok,
        errors=sum(statuses.values()) - ok,
        statuses=dict(sorted(statuses.items())),
        latencies_ms=latencies,
        client_cpu_seconds=cpu,
        server_cpu_seconds=server_seconds,
    )


def load(url: str, body: bytes, **kwargs) -> LoadResult:
    """Synchronous entry point (a fresh event loop per phase, uvloop not needed for a client)."""
    return asyncio.run(run_load(url, body, **kwargs))
