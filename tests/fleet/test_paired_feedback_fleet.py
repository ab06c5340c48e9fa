"""Paired feedback in a fleet: B's shadow answers wait in Redis, so feedback posted to any
instance pairs, and a Redis that is gone leaves feedback answered and the answer unpaired."""

from __future__ import annotations

import time

import httpx

from tests.fleet.fleet import fleet_env, running_fleet
from tests.support.images import ORANGE, image_b64
from tests.support.metrics import metric_sum
from tests.support.paired import SECRET, label_each, shadowed_answers
from tests.support.redis import RedisServer, running_redis
from tests.support.server import Server, running_server
from tests.support.slow_proxy import slow_proxy

PAIRED = "edgeserve_feedback_paired_total"
ANSWERS = 20
SHADOW = {"SHADOW_ENABLED": "true", "FEEDBACK_SECRET": SECRET}


def test_feedback_posted_to_another_instance_pairs_with_the_shadow_run_on_the_first(
    shared_redis: RedisServer,
):
    with running_fleet(shared_redis, 2, SHADOW_MAX_INFLIGHT=str(ANSWERS), **SHADOW) as servers:
        asked, told = servers
        label_each(told, shadowed_answers(asked, ANSWERS))
        assert metric_sum(told, PAIRED, a_outcome="wrong", b_outcome="correct") == ANSWERS
        assert metric_sum(asked, PAIRED) == 0


def timed_feedback(server: Server, answer: dict) -> tuple[httpx.Response, float]:
    with server.client() as client:
        started = time.monotonic()
        body = {"feedback_token": answer["feedback_token"], "label": "orange"}
        response = client.post("/v1/feedback", json=body)
        return response, time.monotonic() - started


def test_a_stopped_redis_leaves_feedback_answered_at_once_and_unpaired(
    redis_server: RedisServer,
):
    with running_server(**fleet_env(redis_server, **SHADOW)) as server:
        (answer,) = shadowed_answers(server, 1)
        redis_server.kill()
        response, took = timed_feedback(server, answer)
        assert response.status_code == 202, response.text
        assert took < 1.0, f"feedback waited {took:.2f}s for a stopped Redis"
        assert metric_sum(server, PAIRED) == 0
        errors = "edgeserve_feedback_paired_store_errors_total"
        assert metric_sum(server, errors, operation="take") == 1
        with server.client() as client:  # and inference goes on
            response = client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)})
        assert response.status_code == 200, response.text


def test_a_slow_redis_holds_feedback_up_no_longer_than_the_deadline_and_leaves_it_unpaired():
    with running_redis() as redis, slow_proxy(redis.port, delay=0.0) as proxy:
        env = {"STATE_URL": proxy.url, "WORKERS": "1", **SHADOW}
        with running_server(**env) as server:
            (answer,) = shadowed_answers(server, 1)
            proxy.slows, proxy.delay = (lambda command: b"GETDEL" in command.upper()), 2.0
            response, took = timed_feedback(server, answer)
            assert proxy.held >= 1, "the proxy never held GETDEL's reply back"
            assert response.status_code == 202, response.text
            assert took < 1.0, f"feedback waited {took:.2f}s for a slow Redis"
            assert metric_sum(server, PAIRED) == 0
            errors = "edgeserve_feedback_paired_store_errors_total"
            assert metric_sum(server, errors, operation="take") == 1
