"""The fleet backend: one Redis key holds the state document, one channel announces changes.

STATE_URL=redis://host:port/db. The document is JSON under the key `edgeserve:state`; every
write is a compare-and-set on its `generation`, run inside Redis by one Lua script, which also
publishes the new generation on `edgeserve:state:changed` so every instance re-reads at once.
Short socket timeouts and one immediate reconnect at most: a dead Redis costs an admin call
about half a second and never touches inference, which serves the state held in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import redis.asyncio as redis
from redis import exceptions
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from edgeserve.errors import one_line
from edgeserve.state.store import StoreUnavailable

KEY = "edgeserve:state"
SOCKET_TIMEOUT_SECONDS = 0.5
# Between failed attempts to subscribe: doubles from the first to the last, reset on success.
BACKOFF_SECONDS = (0.05, 2.0)

# KEYS[1] the document; ARGV[1] the expected generation ('' = none), ARGV[2] the new
# document, ARGV[3] the channel, ARGV[4] the new generation. A stored value that is not JSON
# or has no integer generation in [0, 2^53) counts as no document: a write expecting none
# replaces it, and the script never fails on what someone else stored.
COMPARE_AND_SET = """
local stored = redis.call('GET', KEYS[1])
local generation = nil
if stored then
  local ok, document = pcall(cjson.decode, stored)
  if ok and type(document) == 'table' then
    local g = document['generation']
    if type(g) == 'number' and g >= 0 and g < 9007199254740992 and g == math.floor(g) then
      generation = g
    end
  end
end
if ARGV[1] == '' then
  if generation ~= nil then return 0 end
elseif generation ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""

UNREACHABLE = (exceptions.RedisError, OSError, asyncio.TimeoutError)


def channel_for(key: str) -> str:
    """The pub/sub channel that announces a change of `key`."""
    return f"{key}:changed"


def reason(error: BaseException) -> str:
    """One line for logs and the 503 answer: what failed, not a traceback."""
    return f"redis: {one_line(error, limit=200)}"


class RedisStore:
    """A StateStore on Redis, shared by every worker of every instance."""

    kind = "redis"

    def __init__(self, url: str, *, key: str = KEY):
        self.key = key
        self.channel = channel_for(key)
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            # One immediate retry replaces a pooled connection that a Redis restart closed;
            # beyond that, fail fast and let the sync loop decide when to try again.
            retry=Retry(NoBackoff(), 1, supported_errors=(exceptions.ConnectionError,)),
            # PING a connection idle this long before using it: finds a half-open one (a
            # network partition sends no reset), including the subscription's.
            health_check_interval=10,
        )
        self.script = self.client.register_script(COMPARE_AND_SET)
        self.pubsub: PubSub | None = None
        self.backoff = BACKOFF_SECONDS[0]

    async def read(self) -> Any | None:
        try:
            stored = await self.client.get(self.key)
        except UNREACHABLE as error:
            await self._drop_subscription()
            raise StoreUnavailable(reason(error)) from error
        if stored is None:
            return None
        return json.loads(stored)  # ValueError when it is not JSON: the schema's caller logs it

    async def compare_and_set(
        self, expected_generation: int | None, document: dict[str, Any]
    ) -> bool:
        expected = "" if expected_generation is None else str(expected_generation)
        encoded = json.dumps(document, sort_keys=True, allow_nan=False)
        generation = str(document.get("generation", ""))
        try:
            written = await self.script(
                keys=[self.key], args=[expected, encoded, self.channel, generation]
            )
        except UNREACHABLE as error:
            await self._drop_subscription()
            raise StoreUnavailable(reason(error)) from error
        return bool(written)

    async def wait_for_change(self, timeout: float) -> None:
        """Return on a change notice, after `timeout`, or at once after (re)subscribing.

        A fresh subscription may have missed notices, so the caller should re-read then."""
        if self.pubsub is None:
            if await self._subscribe():
                return
            await asyncio.sleep(min(timeout, self.backoff))
            self.backoff = min(self.backoff * 2, BACKOFF_SECONDS[1])
            return
        deadline = time.monotonic() + timeout
        try:
            # None is the timeout or a subscribe confirmation: wait on until the deadline.
            while (remaining := deadline - time.monotonic()) > 0:
                if await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining):
                    break
            while await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0):
                pass  # several notices need one re-read
        except UNREACHABLE:
            await self._drop_subscription()

    async def _subscribe(self) -> bool:
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
        except UNREACHABLE:
            await pubsub.aclose()
            return False
        self.pubsub = pubsub
        self.backoff = BACKOFF_SECONDS[0]
        return True

    async def _drop_subscription(self) -> None:
        """Forget a subscription whose connection failed; the next wait subscribes again."""
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*UNREACHABLE):  # the connection is gone either way
                await pubsub.aclose()

    async def close(self) -> None:
        await self._drop_subscription()
        await self.client.aclose()
