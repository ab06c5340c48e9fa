"""A Redis whose answers come late: every admin answer says what the store really holds (issue 20).

A real server talks to a real redis-server through a proxy that holds back Redis's replies by
a second, past the client's half-second timeout, while the commands themselves run on time. A
change whose write was answered late did happen; the server must find that out before it
answers, and never reuse the connection the late answer is still coming on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis as redis_client

from edgeserve.state.redis_store import COMPARE_AND_SET
from tests.fleet.fleet import AUTH
from tests.support.redis import RedisServer, running_redis
from tests.support.server import Server, running_server
from tests.support.slow_proxy import SlowProxy, slow_proxy
from tests.support.waiting import wait_until

DELAY_SECONDS = 1.0
COMPARE_AND_SET_SHA = hashlib.sha1(COMPARE_AND_SET.encode()).hexdigest().encode()


def compare_and_set(command: bytes) -> bool:
    """The state's write (EVALSHA of its script): Redis runs it, its answer comes late."""
    return COMPARE_AND_SET_SHA in command


def every_command(command: bytes) -> bool:
    return True


SLOW = {"compare_and_set": (compare_and_set, 20), "every_reply": (every_command, 5)}


@pytest.fixture(scope="module")
def redis_behind_proxy() -> Iterator[tuple[RedisServer, SlowProxy, Server]]:
    """One redis-server, the proxy in front of it and a server behind that, for every test."""
    with running_redis() as redis, slow_proxy(redis.port, delay=0.0) as proxy:
        # Quick while the server starts (it loads its scripts into Redis), slow once it serves.
        with running_server(STATE_URL=proxy.url, WORKERS="1") as server:
            yield redis, proxy, server


def stored(redis: RedisServer) -> dict[str, Any]:
    with redis_client.Redis(port=redis.port, socket_timeout=2) as client:
        return json.loads(client.get("edgeserve:state"))


def watch_changes(server: Server, redis: RedisServer, changes: int) -> tuple[list[str], list[int]]:
    """Make `changes` changes, one after another on one connection: answers those whose answer
    did not match the store after it (a 500 never does) and every status."""
    mismatches, answers = [], []
    with server.admin() as admin:
        for n in range(changes):
            weight_b = round(0.01 * (n + 1), 2)
            answer = admin.post("/admin/config", json={"ab_weight_b": weight_b})
            after = stored(redis)
            answers.append(answer.status_code)
            kept = after["ab_weight_b"] == weight_b
            if answer.status_code == 200:
                matches = kept and answer.json()["ab_weight_b"] == weight_b
            else:  # a refusal is true only when the change is not in the store
                matches = not kept and answer.json()["error"]["code"] == "state_unavailable"
            if not matches:
                mismatches.append(f"change {n}: answered {answer.text[:200]}, store {after}")
    return mismatches, answers


@pytest.mark.parametrize("slow", SLOW)
def test_every_admin_answer_matches_what_the_store_holds_while_redis_answers_late(
    redis_behind_proxy, slow
):
    redis_server, proxy, server = redis_behind_proxy
    slows, changes = SLOW[slow]
    proxy.slows, proxy.delay, held_before = slows, DELAY_SECONDS, proxy.held
    try:
        mismatches, answers = watch_changes(server, redis_server, changes)
    finally:
        proxy.delay = 0.0
    print(f"{slow}: {changes - len(mismatches)} of {changes} answers matched the store", answers)
    assert proxy.held - held_before >= changes, proxy.held  # the fault really happened
    assert not mismatches, (
        f"{len(mismatches)} of {changes} answers did not match the store:\n" + "\n".join(mismatches)
    )
    if slow == "compare_and_set":
        assert answers.count(200) == changes, answers  # each write ran, each was found
        wait_until(
            "the server to serve what the store holds",
            lambda: httpx.get(server.url + "/admin/config", headers=AUTH).json()["ab_weight_b"],
            lambda served: served == stored(redis_server)["ab_weight_b"],
        )
