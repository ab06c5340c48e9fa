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
from tests.support.redis import RedisServer
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


@pytest.fixture
def server_behind_proxy(redis_server: RedisServer) -> Iterator[tuple[Server, SlowProxy]]:
    # Quick while the server starts (it loads its scripts into Redis), slow once it serves.
    with slow_proxy(redis_server.port, delay=0.0) as proxy:
        with running_server(STATE_URL=proxy.url, WORKERS="1") as server:
            yield server, proxy


def stored(redis: RedisServer) -> dict[str, Any]:
    with redis_client.Redis(port=redis.port, socket_timeout=2) as client:
        return json.loads(client.get("edgeserve:state"))


@pytest.mark.parametrize("slow", SLOW)
def test_every_admin_answer_matches_what_the_store_holds_while_redis_answers_late(
    redis_server, server_behind_proxy, slow
):
    server, proxy = server_behind_proxy
    slows, changes = SLOW[slow]
    proxy.slows = slows
    proxy.delay = DELAY_SECONDS
    mismatches, answers, follow_ups = [], [], []
    with server.admin() as admin:
        for n in range(changes):
            weight_b = round(0.01 * (n + 1), 2)
            answer = admin.post("/admin/config", json={"ab_weight_b": weight_b})
            after = stored(redis_server)
            answers.append(answer.status_code)
            kept = after["ab_weight_b"] == weight_b
            if answer.status_code == 200:
                matches = kept and answer.json()["ab_weight_b"] == weight_b
            else:  # a refusal is true only when the change is not in the store
                matches = not kept and answer.json()["error"]["code"] == "state_unavailable"
            if not matches:
                mismatches.append(f"change {n}: answered {answer.text[:200]}, store {after}")
            # The next call on this worker is answered too (no late reply read as its own).
            follow_ups.append(admin.get("/admin/config").status_code)
    print(f"{slow}: {changes - len(mismatches)} of {changes} answers matched the store", answers)
    assert proxy.held >= changes, proxy.held  # the fault really happened
    assert not mismatches, (
        f"{len(mismatches)} of {changes} answers did not match the store:\n" + "\n".join(mismatches)
    )
    assert follow_ups == [200] * changes, follow_ups
    if slow == "compare_and_set":
        assert answers.count(200) == changes, answers  # each write ran, each was found
        proxy.delay = 0.0
        wait_until(
            "the server to serve what the store holds",
            lambda: httpx.get(server.url + "/admin/config", headers=AUTH).json()["ab_weight_b"],
            lambda served: served == stored(redis_server)["ab_weight_b"],
        )
