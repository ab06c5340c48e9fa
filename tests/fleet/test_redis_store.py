"""RedisStore against a real redis-server: compare-and-set, change notices, Redis going away."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis

from edgeserve.state.redis_store import COMPARE_AND_SET, KEY, RedisStore, channel_for
from edgeserve.state.store import OutcomeUnknown, StoreUnavailable
from tests.support.redis import RedisServer
from tests.support.slow_proxy import slow_proxy
from tests.support.waiting import wait_until_async

T = TypeVar("T")
DELAY_PAST_ANSWER = 0.7
"""After a 0.5 s timeout, a reply held back 1 s has come in by then."""


def document(generation: int, **fields: Any) -> dict[str, Any]:
    return {"generation": generation, "ab_weight_a": 1.0, "ab_weight_b": 0.0, **fields}


def with_stores(url: str, count: int, body: Callable[..., Awaitable[T]]) -> T:
    """Run `body(*stores)` on `count` stores sharing one fresh key; close them after."""
    key = f"test:{uuid.uuid4().hex}"

    async def run() -> T:
        stores = [RedisStore(url, key=key) for _ in range(count)]
        try:
            return await body(*stores)
        finally:
            for store in stores:
                await store.close()

    return asyncio.run(run())


def test_the_document_lives_under_edgeserve_state_and_changes_are_announced_on_its_channel():
    store = RedisStore("redis://127.0.0.1:1/0")
    assert (store.kind, store.key, store.channel) == ("redis", KEY, "edgeserve:state:changed")
    assert channel_for("fleet:x") == "fleet:x:changed"


def test_an_empty_store_reads_none(shared_redis: RedisServer):
    async def body(store: RedisStore) -> Any:
        return await store.read()

    assert with_stores(shared_redis.url, 1, body) is None


def test_a_write_on_an_empty_store_is_read_back_as_written(shared_redis: RedisServer):
    async def body(store: RedisStore) -> tuple[bool, Any]:
        written = await store.compare_and_set(None, document(1, shadow_enabled=True))
        return written, await store.read()

    assert with_stores(shared_redis.url, 1, body) == (True, document(1, shadow_enabled=True))


def test_a_write_on_a_stale_generation_changes_nothing(shared_redis: RedisServer):
    async def body(store: RedisStore) -> tuple[bool, bool, Any]:
        await store.compare_and_set(None, document(1))
        await store.compare_and_set(1, document(2))
        stale = await store.compare_and_set(1, document(2, ab_weight_b=0.5))
        seed = await store.compare_and_set(None, document(1, ab_weight_b=0.5))
        return stale, seed, await store.read()

    assert with_stores(shared_redis.url, 1, body) == (False, False, document(2))


def test_of_instances_seeding_an_empty_store_at_once_exactly_one_wins(shared_redis: RedisServer):
    async def body(*stores: RedisStore) -> tuple[list[bool], Any]:
        seeds = [document(7, ab_weight_b=float(i)) for i in range(len(stores))]
        results = await asyncio.gather(
            *(s.compare_and_set(None, seed) for s, seed in zip(stores, seeds, strict=True))
        )
        return list(results), await stores[0].read()

    results, stored = with_stores(shared_redis.url, 8, body)
    assert results.count(True) == 1, results
    assert stored == document(7, ab_weight_b=float(results.index(True))), stored


def test_concurrent_read_modify_writes_lose_no_change(shared_redis: RedisServer):
    writers, changes = 4, 25

    async def change(store: RedisStore, writer: int) -> None:
        for n in range(changes):
            while True:  # what the state core does: re-read and retry when someone wrote first
                current = await store.read()
                updated = {**current, f"w{writer}": n, "generation": current["generation"] + 1}
                if await store.compare_and_set(current["generation"], updated):
                    break

    async def body(*stores: RedisStore) -> Any:
        await stores[0].compare_and_set(None, document(0))
        await asyncio.gather(*(change(store, i) for i, store in enumerate(stores)))
        return await stores[0].read()

    final = with_stores(shared_redis.url, writers, body)
    assert final["generation"] == writers * changes, final
    assert [final[f"w{i}"] for i in range(writers)] == [changes - 1] * writers, final


def test_a_write_wakes_an_instance_waiting_for_a_change(shared_redis: RedisServer):
    async def body(writer: RedisStore, watcher: RedisStore) -> float:
        await watcher.wait_for_change(5)  # the first call subscribes and returns at once
        waiting = asyncio.create_task(watcher.wait_for_change(10))
        await asyncio.sleep(0)  # one turn of the loop: the watcher runs until it blocks on Redis
        started = time.monotonic()
        await writer.compare_and_set(None, document(1))
        await waiting
        return time.monotonic() - started

    woke_after = with_stores(shared_redis.url, 2, body)
    assert woke_after < 1.0, woke_after


def test_waiting_without_a_change_returns_after_the_timeout(shared_redis: RedisServer):
    async def body(store: RedisStore) -> float:
        await store.wait_for_change(5)
        started = time.monotonic()
        await store.wait_for_change(0.3)
        return time.monotonic() - started

    waited = with_stores(shared_redis.url, 1, body)
    assert 0.25 <= waited < 1.0, waited


def test_a_stored_value_that_is_not_json_reads_as_a_value_error(shared_redis: RedisServer):
    async def body(store: RedisStore) -> None:
        with redis.Redis.from_url(shared_redis.url) as raw:
            raw.set(store.key, b"{not json")
        with pytest.raises(ValueError):
            await store.read()

    with_stores(shared_redis.url, 1, body)


@pytest.mark.parametrize(
    "stored",
    [b"{not json", b"[]", b'{"generation": "3"}', b'{"generation": 1e30}', b'{"generation": 1.5}'],
)
def test_a_stored_value_without_a_valid_generation_counts_as_empty(
    shared_redis: RedisServer, stored: bytes
):
    async def body(store: RedisStore) -> tuple[bool, Any]:
        with redis.Redis.from_url(shared_redis.url) as raw:
            raw.set(store.key, stored)
        return await store.compare_and_set(None, document(4)), await store.read()

    assert with_stores(shared_redis.url, 1, body) == (True, document(4))


def test_a_dead_redis_is_store_unavailable_within_a_second(redis_server: RedisServer):
    async def body(store: RedisStore) -> list[str]:
        await store.compare_and_set(None, document(1))
        redis_server.kill()
        reasons = []
        for attempt in (store.read(), store.compare_and_set(1, document(2))):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as raised:
                await attempt
            assert time.monotonic() - started < 1.0
            reasons.append(str(raised.value))
        return reasons

    for reason in with_stores(redis_server.url, 1, body):
        assert reason.startswith("redis: ") and "\n" not in reason, reason


def test_a_redis_that_never_answers_times_out_instead_of_stalling():
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"

        async def body(store: RedisStore) -> float:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.read()
            return time.monotonic() - started

        assert with_stores(url, 1, body) < 2.0


def test_waiting_while_redis_is_down_backs_off_instead_of_spinning(redis_server: RedisServer):
    redis_server.kill()

    async def body(store: RedisStore) -> tuple[int, float]:
        started, calls = time.monotonic(), 0
        while time.monotonic() - started < 1.0:
            await store.wait_for_change(5)
            calls += 1
        return calls, store.backoff

    calls, backoff = with_stores(redis_server.url, 1, body)
    assert calls < 12, calls  # 50 ms doubling: about 5 attempts in a second, not thousands
    assert backoff == min(0.05 * 2**calls, 2.0), (calls, backoff)  # each wait twice the last


def test_after_redis_returns_empty_changes_are_announced_again(redis_server: RedisServer):
    async def body(writer: RedisStore, watcher: RedisStore) -> tuple[Any, float]:
        await watcher.wait_for_change(5)
        await writer.compare_and_set(None, document(1))
        redis_server.kill()
        redis_server.start()  # empty: nothing was persisted
        stored_after_restart = await writer.read()

        async def subscribed_again() -> bool:
            if watcher.pubsub is not None and await subscribed(watcher):
                return True
            await watcher.wait_for_change(0.2)  # waiting is what subscribes again
            return False

        await wait_until_async("the watcher to subscribe again", subscribed_again, interval=0)
        waiting = asyncio.create_task(watcher.wait_for_change(10))
        await asyncio.sleep(0)  # one turn of the loop: the watcher runs until it blocks on Redis
        started = time.monotonic()
        await writer.compare_and_set(None, document(5))
        await waiting
        return stored_after_restart, time.monotonic() - started

    stored_after_restart, woke_after = with_stores(redis_server.url, 2, body)
    assert stored_after_restart is None
    assert woke_after < 1.0, woke_after


async def subscribed(store: RedisStore) -> bool:
    """True once Redis counts a subscriber on the store's channel."""
    counts = await store.client.pubsub_numsub(store.channel)
    return dict(counts).get(store.channel.encode(), 0) > 0


def test_a_write_sent_twice_is_stored_once_and_answered_as_written(shared_redis: RedisServer):
    async def body(store: RedisStore) -> tuple[bool, bool, Any]:
        await store.compare_and_set(None, document(1, change_id="a" * 16))
        first = await store.compare_and_set(1, document(2, change_id="b" * 16))
        again = await store.compare_and_set(1, document(2, change_id="b" * 16))  # a retried send
        return first, again, await store.read()

    assert with_stores(shared_redis.url, 1, body) == (True, True, document(2, change_id="b" * 16))


def test_a_write_resolved_as_lost_can_never_land_afterwards(shared_redis: RedisServer):
    async def body(store: RedisStore) -> tuple[bool, bool, bool, Any]:
        await store.compare_and_set(None, document(1, change_id="a" * 16))
        landed = await store.resolve("c" * 16)  # its answer was lost; it never reached Redis
        late = await store.compare_and_set(1, document(2, change_id="c" * 16))  # now it does
        found = await store.resolve("a" * 16)
        return landed, late, found, await store.read()

    landed, late, found, stored = with_stores(shared_redis.url, 1, body)
    assert (landed, late, found) == (False, False, True)
    assert stored == document(1, change_id="a" * 16)


def test_a_write_is_found_once_others_were_written_on_top_of_it(shared_redis: RedisServer):
    async def body(store: RedisStore) -> bool:
        await store.compare_and_set(None, document(1, change_id="a" * 16))
        await store.compare_and_set(1, document(2, change_id="b" * 16, history=["a" * 16]))
        return await store.resolve("a" * 16)

    assert with_stores(shared_redis.url, 1, body) is True


def test_after_a_late_answer_the_next_calls_get_their_own_answers(shared_redis: RedisServer):
    """The late answer of a write arrives on a connection that was closed, not reused."""
    late = hashlib.sha1(COMPARE_AND_SET.encode()).hexdigest().encode()
    with slow_proxy(shared_redis.port, 0.0, lambda command: late in command) as proxy:

        async def body(store: RedisStore) -> tuple[bool, list[Any]]:
            await store.compare_and_set(None, document(1, change_id="a" * 16))
            proxy.delay = 1.0  # from now on the write's answer comes after its timeout
            with pytest.raises(OutcomeUnknown):
                await store.compare_and_set(1, document(2, change_id="b" * 16))
            landed = await store.resolve("b" * 16)
            await asyncio.sleep(DELAY_PAST_ANSWER)  # the late answer is in by now
            return landed, [await store.read() for _ in range(3)]

        key = f"test:{uuid.uuid4().hex}"

        async def run() -> tuple[bool, list[Any]]:
            store = RedisStore(proxy.url, key=key)
            try:
                return await body(store)
            finally:
                await store.close()

        landed, reads = asyncio.run(run())
    assert landed is True
    assert reads == [document(2, change_id="b" * 16)] * 3, reads
