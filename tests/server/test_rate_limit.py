"""The per-client token bucket: 429 with Retry-After on /v1/*, /v2/models/* and /admin/*, never on
health."""

from __future__ import annotations

import pytest

from tests.support.images import image_b64
from tests.support.server import running_server


@pytest.fixture(scope="module")
def limited():
    with running_server(RATE_LIMIT_RPS="0.5", RATE_LIMIT_BURST="3") as server:
        yield server


def test_infer_beyond_the_burst_gets_429_with_retry_after(limited):
    body = {"image_b64": image_b64((255, 0, 0))}
    with limited.client() as client:
        statuses = [client.post("/v1/infer", json=body) for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    refused = statuses[-1]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["Trace-Id"]


def test_admin_is_rate_limited_too(limited):
    with limited.admin() as client:
        statuses = {client.get("/admin/config").status_code for _ in range(6)}
    assert 429 in statuses


def test_inference_protocol_requests_are_rate_limited_in_the_protocol_s_error_shape(limited):
    body = {
        "inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [1], "data": [image_b64((255, 0, 0))]}
        ]
    }
    with limited.client() as client:
        answers = [client.post("/v2/models/edgeserve/infer", json=body) for _ in range(6)]
    refused = answers[-1]
    assert refused.status_code == 429, refused.text
    assert list(refused.json()) == ["error"], refused.text
    assert refused.headers["X-Edgeserve-Error-Code"] == "rate_limited"


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/health", "/ready", "/metrics", "/v2/health/live", "/v2/health/ready", "/v2"],
)
def test_health_ready_and_metrics_are_never_limited(limited, path):
    with limited.client() as client:
        statuses = {client.get(path).status_code for _ in range(20)}
    assert statuses == {200}
