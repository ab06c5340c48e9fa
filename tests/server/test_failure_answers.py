"""The documented 5xx answers: 503 overloaded, 500 inference_failed and 500 internal_error."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from edgeserve.server.errors import JsonErrorHandler
from tests.support.images import image_b64
from tests.support.metrics import metric_sum
from tests.support.models import save_fails_on_real_images, save_slow
from tests.support.server import running_server
from tests.support.waiting import wait_until

RED = {"image_b64": image_b64((255, 0, 0))}


def test_requests_beyond_max_inflight_get_503_overloaded_with_retry_after(tmp_path):
    slow = save_slow(tmp_path / "slow.onnx")  # about a second per request
    env = {"MODEL_VA_PATH": str(slow), "MODEL_VB_PATH": "", "WARMUP_RUNS": "0"}
    with running_server(MAX_INFLIGHT="1", **env) as server, ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, server.url + "/v1/infer", json=RED, timeout=60)
        wait_until(
            "the first request in flight",
            lambda: metric_sum(server, "edgeserve_inflight_requests"),
            lambda in_flight: in_flight == 1,
            timeout=30,
        )
        with server.client() as client:
            second = client.post("/v1/infer", json=RED)
        assert first.result().status_code == 200, first.result().text
    assert second.status_code == 503, second.text
    assert second.json()["error"]["code"] == "overloaded", second.text
    assert second.headers["Retry-After"] == "1", second.headers


def test_a_model_that_fails_at_run_time_answers_500_inference_failed(tmp_path):
    broken = save_fails_on_real_images(tmp_path / "broken.onnx")  # warms up, then fails
    env = {"MODEL_VA_PATH": str(broken), "MODEL_VB_PATH": ""}
    with running_server(**env) as server, server.client() as client:
        r = client.post("/v1/infer", json=RED)
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "inference_failed", r.text
    assert r.json()["trace_id"] == r.headers["Trace-Id"], r.text


def test_an_unexpected_error_answers_500_internal_error_naming_no_internals():
    # No client input reaches this path (a client can never cause a 5xx): drive the handler.
    response = JsonErrorHandler().default(None, RuntimeError("secret internals"))
    body = json.loads(response.body)
    assert response.status == 500, body
    assert body["error"]["code"] == "internal_error", body
    assert "secret internals" not in response.body.decode(), body
    assert body["trace_id"] == response.headers["Trace-Id"], body
