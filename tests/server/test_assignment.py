"""Assignment on a real server: weights, sticky cookies, ramps and X-Canary."""

from __future__ import annotations

import math

import httpx
import pytest

from edgeserve.traffic.routing import bucket_of
from tests.support.images import image_b64
from tests.support.server import running_server

RED = {"image_b64": image_b64((255, 0, 0))}


def variant_of(client: httpx.Client, cookie: str | None = None, **kwargs) -> str:
    if cookie is not None:
        client.cookies.set("edgeserve_ab", cookie)
    r = client.post("/v1/infer", json=RED, **kwargs)
    assert r.status_code == 200, r.text
    return r.headers["X-Edgeserve-Variant"]


def test_cookieless_share_of_b_is_inside_a_999_binomial_interval():
    n, p = 2000, 0.1
    with running_server(AB_WEIGHT_A="0.9", AB_WEIGHT_B="0.1", STICKY_COOKIE="false") as server:
        with server.client() as client:
            b = sum(variant_of(client) == "B" for _ in range(n))
    half_width = 3.29 * math.sqrt(n * p * (1 - p))
    assert abs(b - n * p) <= half_width, f"B answered {b} of {n}"


@pytest.fixture(scope="module")
def sticky():
    with running_server(AB_WEIGHT_A="0.8", AB_WEIGHT_B="0.2") as server:
        yield server


def test_new_client_gets_an_httponly_lax_cookie(sticky):
    with sticky.client() as client:
        r = client.post("/v1/infer", json=RED)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("edgeserve_ab=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_fifty_requests_with_one_cookie_get_one_variant(sticky):
    with sticky.client() as client:
        variants = {variant_of(client) for _ in range(50)}
    assert len(variants) == 1, variants


def test_client_that_drops_cookies_is_assigned_at_random(sticky):
    with sticky.client() as client:
        variants = set()
        for _ in range(60):
            variants.add(variant_of(client))
            client.cookies.clear()
    assert variants == {"A", "B"}


def test_raising_b_moves_no_b_client_back_to_a():
    with running_server(AB_WEIGHT_A="0.8", AB_WEIGHT_B="0.2") as server:
        cookies = [f"client-{n:04d}-abcdefgh" for n in range(200)]
        with server.client() as client:
            before = {c: variant_of(client, cookie=c) for c in cookies}
            with server.admin() as admin:
                assert (
                    admin.post(
                        "/admin/config", json={"ab_weight_a": 0.5, "ab_weight_b": 0.5}
                    ).status_code
                    == 200
                )
            after = {c: variant_of(client, cookie=c) for c in cookies}
    moved_back = [c for c in cookies if before[c] == "B" and after[c] == "A"]
    moved_on = [c for c in cookies if before[c] == "A" and after[c] == "B"]
    assert not moved_back
    assert moved_on


def test_x_canary_forces_a_variant_when_canary_is_enabled():
    with running_server(CANARY_ENABLED="true", AB_WEIGHT_A="0.5", AB_WEIGHT_B="0.5") as server:
        with server.client() as client:
            forced_b = {variant_of(client, headers={"X-Canary": "always"}) for _ in range(20)}
            forced_a = {variant_of(client, headers={"X-Canary": "never"}) for _ in range(20)}
    assert (forced_b, forced_a) == ({"B"}, {"A"})


def test_x_canary_is_ignored_when_canary_is_disabled(sticky):
    # A client whose cookie puts it on A: only an honoured X-Canary could send it to B.
    a_client = next(c for c in (f"client-{n:05d}" for n in range(100)) if bucket_of(c) < 0.8)
    with sticky.client() as client:
        assert variant_of(client, cookie=a_client) == "A"
        assert variant_of(client, cookie=a_client, headers={"X-Canary": "always"}) == "A"
