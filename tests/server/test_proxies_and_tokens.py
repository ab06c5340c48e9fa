"""Behind a proxy: X-Forwarded-For counts only from TRUSTED_PROXIES; optional /metrics token;
a Secure sticky cookie."""

from __future__ import annotations

import json

import pytest

from tests.support.images import image_b64
from tests.support.server import running_server

METRICS_TOKEN = "metrics-token-0123456789"
LIMITED = {"RATE_LIMIT_RPS": "0.001", "RATE_LIMIT_BURST": "2"}


@pytest.fixture(scope="module")
def direct_server():
    """No trusted proxy, and Sanic's own proxy variable set: it must not count."""
    with running_server(**LIMITED, SANIC_PROXIES_COUNT="1", SANIC_REAL_IP_HEADER="x-real-ip") as s:
        yield s


@pytest.fixture(scope="module")
def proxied_server():
    env = {
        **LIMITED,
        "TRUSTED_PROXIES": "127.0.0.1",
        "METRICS_TOKEN": METRICS_TOKEN,
        "STICKY_COOKIE_NAME": "__Host-ab",
        "STICKY_COOKIE_SECURE": "true",
    }
    with running_server(**env) as server:
        yield server


def statuses(server, forwarded_for: list[str]) -> list[int]:
    with server.admin() as admin:
        return [
            admin.get("/admin/config", headers={"X-Forwarded-For": hop}).status_code
            for hop in forwarded_for
        ]


def test_x_forwarded_for_from_an_untrusted_peer_does_not_pick_the_bucket(direct_server):
    assert statuses(direct_server, ["1.1.1.1", "2.2.2.2", "3.3.3.3"]) == [200, 200, 429]


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(proxied_server):
    assert statuses(proxied_server, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) == [200, 200, 200]
    assert statuses(proxied_server, ["10.9.9.9"] * 3) == [200, 200, 429]
    lines = proxied_server.output().splitlines()
    logged = {json.loads(line)["client"] for line in lines if '"client"' in line}
    assert {"10.0.0.1", "10.9.9.9"} <= logged, logged


def test_a_client_cannot_prepend_its_own_forwarded_for_hops(proxied_server):
    # The proxy appends the real peer; whatever the client wrote before it is ignored.
    assert statuses(proxied_server, ["6.6.6.1, 10.7.7.7", "6.6.6.2, 10.7.7.7", "10.7.7.7"]) == [
        200,
        200,
        429,
    ]


def test_metrics_need_the_token_when_metrics_token_is_set(proxied_server):
    with proxied_server.client() as client:
        refused = client.get("/metrics")
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert allowed.status_code == 200 and "edgeserve_http_requests_total" in allowed.text


def test_metrics_are_open_without_metrics_token(direct_server):
    with direct_server.client() as client:
        assert client.get("/metrics").status_code == 200


def test_sticky_cookie_secure_marks_the_cookie_secure(proxied_server):
    with proxied_server.client() as client:
        r = client.post("/v1/infer", json={"image_b64": image_b64((255, 0, 0))})
    cookie = r.headers.get("set-cookie", "")
    assert cookie.startswith("__Host-ab=") and "secure" in cookie.lower(), cookie
