"""B's shadow answers in Redis (STATE_URL), so feedback posted to any instance pairs.

One key per feedback nonce, written with the token's lifetime as its TTL and taken with GETDEL,
so a pair counts once across the fleet. Short socket timeouts and no retry: a dead or slow
Redis costs a feedback request at most the caller's deadline, never an error.
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

PREFIX = "edgeserve:shadow-answer:"
SOCKET_TIMEOUT_SECONDS = 0.2


class AnswerRedis:
    def __init__(self, url: str, ttl_seconds: int):
        self.ttl_seconds = ttl_seconds
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    async def put(self, nonce: str, value: str) -> None:
        await self.client.set(PREFIX + nonce, value, ex=self.ttl_seconds)

    async def take(self, nonce: str) -> str | None:
        value = await self.client.getdel(PREFIX + nonce)
        return None if value is None else str(value)

    async def close(self) -> None:
        await self.client.aclose()
