"""A Redis restored from an older snapshot: no change the fleet acknowledged is lost (issue 20).

Each try saves an RDB snapshot, makes a change the whole fleet follows, then crashes Redis and
starts it from the snapshot, so the store is back in time while every instance serves the newer
state. A change sent within half a second of Redis answering again must then be kept, and so
must the change the snapshot lost (the fleet puts it back in the same write).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import redis as redis_client

from tests.fleet.fleet import AUTH, running_fleet
from tests.support.redis import RedisServer
from tests.support.server import Server
from tests.support.waiting import wait_until

TRIES = 20
CHANGE_WITHIN_SECONDS = 0.5


def stored(redis: RedisServer) -> dict[str, Any]:
    with redis_client.Redis(port=redis.port, socket_timeout=2) as client:
        return json.loads(client.get("edgeserve:state") or "null") or {}


def config_of(server: Server) -> dict[str, Any]:
    response = httpx.get(
        server.url + "/admin/config", headers={**AUTH, "Connection": "close"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def change(server: Server, **fields: float) -> httpx.Response:
    return httpx.post(server.url + "/admin/config", json=fields, headers=AUTH, timeout=10)


def served(document: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(document.get(name) for name in ("generation", "ab_weight_a", "ab_weight_b"))


def settled(redis: RedisServer, fleet: list[Server]) -> dict[str, Any]:
    """Until the store and every instance agree on the generation and weights: the store."""

    def agreement() -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
        return stored(redis), [served(config_of(server)) for server in fleet]

    return wait_until(
        "the store and every instance to agree on the generation and weights",
        agreement,
        lambda seen: set(seen[1]) == {served(seen[0])},
        timeout=10,
        interval=0.05,
    )[0]


def test_no_change_acknowledged_after_a_restore_from_an_older_snapshot_is_lost(redis_server):
    lost: dict[int, list[str]] = {}
    acknowledged = 0
    with running_fleet(redis_server, 2, WORKERS="1") as fleet:
        for attempt in range(TRIES):
            weight_a, weight_b = 2.0 + attempt / 100, 0.01 + attempt / 100
            snapshot = redis_server.snapshot()
            for value in (weight_a - 1, weight_a):  # the changes the snapshot lacks
                before = change(fleet[0], ab_weight_a=value)
                assert before.status_code == 200, before.text
            settled(redis_server, fleet)

            redis_server.restart_from(snapshot)  # returns once Redis answers PING
            back = time.monotonic()
            answer = change(fleet[attempt % 2], ab_weight_b=weight_b)
            assert time.monotonic() - back < CHANGE_WITHIN_SECONDS + 1, "answered too slowly"
            assert answer.status_code in (200, 503), answer.text
            acknowledged += answer.status_code == 200

            final = settled(redis_server, fleet)
            if (final["ab_weight_b"] == weight_b) != (answer.status_code == 200):
                lost.setdefault(attempt, []).append(f"ab_weight_b={weight_b} answered {answer}")
            if final["ab_weight_a"] != weight_a:
                lost.setdefault(attempt, []).append(f"ab_weight_a={weight_a} (before the restore)")
        # Every try the fleet found the store back in time and put its state back.
        found_behind = sum(
            server.output().count(f'"{event}"')
            for server in fleet
            for event in ("state_store_behind", "state_reseeded")
        )
    print(f"{acknowledged} of {TRIES} changes after a restore answered 200; {len(lost)} tries lost")
    assert not lost, f"{len(lost)} of {TRIES} tries lost an acknowledged change: {lost}"
    assert found_behind >= TRIES, found_behind
