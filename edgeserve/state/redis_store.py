"""The fleet backend: one Redis key holds the state document, one channel announces changes.

STATE_URL=redis://host:port/db. The document is JSON under the key `edgeserve:state`; every
write is a compare-and-set on its `generation`, run inside Redis by one Lua script, which also
publishes the new generation on `edgeserve:state:changed` so every instance re-reads at once.
Short socket timeouts and one immediate reconnect at most: a dead Redis costs an admin call
about half a second and never touches inference, which serves the state held in memory. A
write whose answer times out may still have run: `resolve` reads it back by its change id and,
if it is not there, fences it out for good, so the caller can answer either way truthfully.
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
from edgeserve.state.store import OutcomeUnknown, StoreUnavailable

KEY = "edgeserve:state"
SOCKET_TIMEOUT_SECONDS = 0.5
RESOLVE_TIMEOUT_SECONDS = 3.0
"""Reading back a write whose answer was lost waits longer: a slow answer still settles it."""
FENCE_SECONDS = 3600
"""How long a write declared lost stays refused, should its command still reach Redis."""
# Between failed attempts to subscribe: doubles from the first to the last, reset on success.
BACKOFF_SECONDS = (0.05, 2.0)

# Lua helpers shared by both scripts: the stored document's generation, or nil when what is
# stored is not JSON or has no integer generation in [0, 2^53); and whether it is, or was
# written on top of, the change ARGV names.
DOCUMENT = """
local function stored_document(key)
  local stored = redis.call('GET', key)
  if not stored then return nil end
  local ok, document = pcall(cjson.decode, stored)
  if ok and type(document) == 'table' then return document end
  return nil
end
local function generation_of(document)
  if document == nil then return nil end
  local g = document['generation']
  if type(g) == 'number' and g >= 0 and g < 9007199254740992 and g == math.floor(g) then
    return g
  end
  return nil
end
local function carries(document, change_id)
  if document == nil or change_id == '' then return false end
  if document['change_id'] == change_id then return true end
  local history = document['history']
  if type(history) ~= 'table' then return false end
  for _, earlier in ipairs(history) do
    if earlier == change_id then return true end
  end
  return false
end
"""

# KEYS[1] the document, KEYS[2] the fence of the new change; ARGV[1] the expected generation
# ('' = none), ARGV[2] the new document, ARGV[3] the channel, ARGV[4] the new generation,
# ARGV[5] the new change id ('' = none). A stored value without a valid generation counts as
# no document: a write expecting none replaces it, and the script never fails on what someone
# else stored. The same change sent twice (a retried send) answers 1 without a second write;
# a change that `resolve` declared lost is refused for good.
COMPARE_AND_SET = (
    DOCUMENT
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local document = stored_document(KEYS[1])
if carries(document, ARGV[5]) then return 1 end
local generation = generation_of(document)
if ARGV[1] == '' then
  if generation ~= nil then return 0 end
elseif generation ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""
)

# KEYS[1] the document, KEYS[2] the fence of the change; ARGV[1] the change id, ARGV[2] how long
# the fence holds. Landed: 1. Not landed: the fence is set in the same step, so the write can
# never land after this answer, and 0.
RESOLVE = (
    DOCUMENT
    + """
if carries(stored_document(KEYS[1]), ARGV[1]) then return 1 end
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[2]))
return 0
"""
)

UNREACHABLE = (exceptions.RedisError, OSError, asyncio.TimeoutError)


def channel_for(key: str) -> str:
    """The pub/sub channel that announces a change of `key`."""
    return f"{key}:changed"


def fence_for(key: str, change_id: str) -> str:
    """The key that, once set, refuses the write of `change_id` for good."""
    return f"{key}:fenced:{change_id}"


def reason(error: BaseException) -> str:
    """One line for logs and the 503 answer: what failed, not a traceback."""
    return f"redis: {one_line(error, limit=200)}"


class RedisStore:
    """A StateStore on Redis, shared by every worker of every instance."""

    kind = "redis"

    def __init__(self, url: str, *, key: str = KEY):
        self.key = key
        self.channel = channel_for(key)
        self.client = connect(url, SOCKET_TIMEOUT_SECONDS)
        # Its own connections, with a longer timeout: settles a write the short one gave up on.
        self.resolver = connect(url, RESOLVE_TIMEOUT_SECONDS)
        self.script = self.client.register_script(COMPARE_AND_SET)
        self.resolve_script = self.resolver.register_script(RESOLVE)
        self.pubsub: PubSub | None = None
        self.backoff = BACKOFF_SECONDS[0]

    async def read(self) -> Any | None:
        try:
            stored = await self.client.get(self.key)
        except UNREACHABLE as error:
            await self._after_failure(self.client)
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
        change_id = document.get("change_id") or ""
        try:
            written = await self.script(
                keys=[self.key, fence_for(self.key, change_id)],
                args=[expected, encoded, self.channel, generation, change_id],
            )
        except UNREACHABLE as error:
            await self._after_failure(self.client)
            # Sent or not, nobody can say from here: the script may have run in Redis.
            raise OutcomeUnknown(reason(error)) from error
        return bool(written)

    async def resolve(self, change_id: str) -> bool:
        try:
            landed = await self.resolve_script(
                keys=[self.key, fence_for(self.key, change_id)], args=[change_id, FENCE_SECONDS]
            )
        except UNREACHABLE as error:
            await self._after_failure(self.resolver)
            raise StoreUnavailable(reason(error)) from error
        return bool(landed)

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

    @staticmethod
    async def _after_failure(client: redis.Redis) -> None:
        """Close the idle connections a failed call may have left with an answer still on its
        way: the next command would read that answer as its own.

        The subscription is left alone: the task waiting on it finds out for itself. Closing it
        from here handed its connection back to the pool while that task still read from it,
        and the next command failed with "another coroutine is already waiting"."""
        with contextlib.suppress(*UNREACHABLE):
            await client.connection_pool.disconnect(inuse_connections=False)

    async def close(self) -> None:
        await self._drop_subscription()
        await self.client.aclose()
        await self.resolver.aclose()


def connect(url: str, timeout: float) -> redis.Redis:
    """A client that gives up on Redis after `timeout` seconds, per connect and per answer."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # One immediate retry replaces a pooled connection that a Redis restart closed; beyond
        # that, fail fast and let the sync loop decide when to try again. Retrying a write is
        # safe: the script answers 1 for a change it already holds.
        retry=Retry(NoBackoff(), 1, supported_errors=(exceptions.ConnectionError,)),
        # PING a connection idle this long before using it: finds a half-open one (a network
        # partition sends no reset), including the subscription's.
        health_check_interval=10,
    )
