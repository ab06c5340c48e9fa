"""Health endpoints, the error envelope and the Trace-Id rules of docs/operations.md."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/healthz", {"ok": True}),
        ("/health", {"status": "ok"}),
        ("/ready", {"ready": True, "models_loaded": True}),
    ],
)
def test_health_endpoints_answer_the_documented_json(server, path, expected):
    with server.client() as client:
        r = client.get(path)
    assert (r.status_code, r.json()) == (200, expected)


def test_metrics_is_prometheus_text(server):
    with server.client() as client:
        r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "edgeserve_build_info" in r.text


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no/such/path", 404, "not_found"),
        ("GET", "/v1/infer", 405, "method_not_allowed"),
        ("DELETE", "/healthz", 405, "method_not_allowed"),
    ],
)
def test_sanic_errors_use_the_envelope(server, method, path, status, code):
    with server.client() as client:
        r = client.request(method, path)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "trace_id"}
    assert body["error"]["code"] == code
    assert body["trace_id"] == r.headers["Trace-Id"]


def test_safe_x_request_id_becomes_the_trace_id(server):
    with server.client() as client:
        r = client.get("/healthz", headers={"X-Request-ID": "order-42.retry:1_a"})
    assert r.headers["Trace-Id"] == "order-42.retry:1_a"


@pytest.mark.parametrize("unsafe", ["has space", "x" * 129, "semi;colon", "<script>"])
def test_unsafe_x_request_id_is_replaced(server, unsafe):
    with server.client() as client:
        r = client.get("/healthz", headers={"X-Request-ID": unsafe})
    assert r.headers["Trace-Id"] != unsafe
    assert len(r.headers["Trace-Id"]) == 32


def test_traceparent_trace_id_is_used_when_no_request_id(server):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with server.client() as client:
        r = client.get("/healthz", headers={"traceparent": traceparent})
    assert r.headers["Trace-Id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_unsafe_request_id_falls_back_to_traceparent(server):
    headers = {
        "X-Request-ID": "bad id",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }
    with server.client() as client:
        r = client.get("/healthz", headers=headers)
    assert r.headers["Trace-Id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_each_request_without_ids_gets_a_new_trace_id(server):
    with server.client() as client:
        ids = {client.get("/healthz").headers["Trace-Id"] for _ in range(5)}
    assert len(ids) == 5
