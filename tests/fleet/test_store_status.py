"""What a server says about its store is true: an invalid stored document is not "in sync", and
a generation no change can follow is the store's problem, not the client's (issue 20)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_client

from edgeserve.state.schema import MAX_GENERATION
from edgeserve.state.sync import RESYNC_SECONDS
from tests.support.metrics import metric_sum
from tests.support.redis import RedisServer, running_redis
from tests.support.server import Server, running_server
from tests.support.waiting import wait_until

KEY = "edgeserve:state"


@pytest.fixture(scope="module")
def redis_for_status() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(scope="module")
def server(redis_for_status: RedisServer) -> Iterator[Server]:
    with running_server(STATE_URL=redis_for_status.url, WORKERS="1") as server:
        yield server


@pytest.fixture
def store(redis_for_status: RedisServer, server: Server) -> Iterator[redis_client.Redis]:
    """A plain client on the server's Redis; the valid document is put back after the test."""
    with redis_client.Redis(port=redis_for_status.port, socket_timeout=2) as client:
        valid = client.get(KEY)
        yield client
        client.set(KEY, valid)
        client.publish(f"{KEY}:changed", b"restored")
        wait_until("the server to be in sync again", lambda: config(server)["in_sync"])


def config(server: Server) -> dict[str, Any]:
    with server.admin() as admin:
        response = admin.get("/admin/config")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_server_is_not_in_sync_while_the_store_holds_an_invalid_document(server, store):
    assert config(server)["in_sync"] is True
    valid = json.loads(store.get(KEY))
    store.set(KEY, json.dumps({**valid, "ab_weight_a": 0, "ab_weight_b": 0}))  # no announcement
    seen = wait_until(
        "GET /admin/config to say in_sync: false",
        lambda: config(server),
        lambda c: c["in_sync"] is False,
        timeout=RESYNC_SECONDS + 2,  # the sync loop re-reads at least this often
    )
    assert (seen["state_store"], seen["ab_weight_a"]) == ("redis", valid["ab_weight_a"]), seen
    assert metric_sum(server, "edgeserve_state_in_sync") == 0


def test_a_generation_at_the_limit_answers_503_state_unavailable_and_changes_nothing(server, store):
    at_limit = {**json.loads(store.get(KEY)), "generation": MAX_GENERATION - 1}
    store.set(KEY, json.dumps(at_limit))
    store.publish(f"{KEY}:changed", str(MAX_GENERATION - 1))
    wait_until(
        "the server to follow the generation at the limit",
        lambda: config(server)["generation"],
        lambda generation: generation == MAX_GENERATION - 1,
    )
    with server.admin() as admin:
        answer = admin.post("/admin/config", json={"ab_weight_b": 0.5})
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "state_unavailable" and "limit" in error["message"], error
    assert json.loads(store.get(KEY)) == at_limit
