"""The canary guard on real servers: no client can fool it, a bad B is out after a few requests
and stays out (quarantine) until an operator acts."""

from __future__ import annotations

import base64
import io
import itertools
import shutil
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import httpx
import pytest
from PIL import Image

from edgeserve.traffic.routing import bucket_of
from tests.support.images import image_b64
from tests.support.metrics import metric_sum
from tests.support.models import save_colour_model, save_fails_on_real_images
from tests.support.server import REPO, running_server
from tests.support.waiting import wait_until

RED = {"image_b64": image_b64((255, 0, 0))}
ROUNDS = 20
THREADS = 8


@cache
def huge_png_b64() -> str:
    """A 5000x5000 PNG: 25 megapixels to decode, a few KB to send."""
    buffer = io.BytesIO()
    Image.new("RGB", (5000, 5000), (200, 30, 30)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def cookie_ids_for_b(count: int) -> list[str]:
    """Sticky ids whose bucket sends them to B at 50/50 weights, as a forging client finds."""
    ids = (f"forged-client-{n:06d}" for n in itertools.count())
    return list(itertools.islice((i for i in ids if bucket_of(i) >= 0.5), count))


def models(tmp_path, a_work: int, b_model) -> dict[str, str]:
    save_colour_model(tmp_path / "a.onnx", work=a_work)
    b_model(tmp_path / "b.onnx")
    return {
        "MODEL_VA_PATH": str(tmp_path / "a.onnx"),
        "MODEL_VB_PATH": str(tmp_path / "b.onnx"),
        "MODEL_DIR": str(tmp_path),
    }


def config(server) -> dict:
    with server.admin() as admin:
        return admin.get("/admin/config").json()


def hostile_round(server, cookies: list[str]) -> list[int]:
    """One saturating burst: huge images and odd sizes forced to B, forged B cookies, plain."""

    def client_work(index: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            requests = [
                ({"image_b64": huge_png_b64()} if index == 0 else None, {"X-Canary": "always"}),
                ({**RED, "img_size": 160}, {"X-Canary": "always"}),
                (RED, {"Cookie": f"edgeserve_ab={cookies[index]}"}),
                (RED, {"Cookie": f"edgeserve_ab={cookies[index + THREADS]}"}),
                (RED, {}),
                (RED, {}),
            ]
            for body, headers in requests:
                if body is None:
                    continue
                client.cookies.clear()
                statuses.append(client.post("/v1/infer", json=body, headers=headers).status_code)
        return statuses

    with ThreadPoolExecutor(THREADS) as pool:
        return [s for statuses in pool.map(client_work, range(THREADS)) for s in statuses]


def test_identical_a_and_b_under_hostile_saturating_load_are_never_rolled_back(tmp_path):
    env = models(tmp_path, 2, lambda path: save_colour_model(path, work=2))
    cookies = cookie_ids_for_b(2 * THREADS)
    with running_server(
        CANARY_ENABLED="true",
        CANARY_MIN_SAMPLES="10",
        AB_WEIGHT_A="1",
        AB_WEIGHT_B="1",
        **env,
    ) as server:
        served = []
        for _ in range(ROUNDS):
            served += hostile_round(server, cookies)
        current = config(server)
        assert metric_sum(server, "edgeserve_canary_rollbacks_total") == 0, current["last_rollback"]
        assert set(served) == {200}, sorted(set(served))
        assert metric_sum(server, "edgeserve_inferences_total", variant="B") > 10 * ROUNDS
    assert current["ab_weight_b"] == 1 and current["quarantine"] is None, current


def test_a_b_five_times_slower_on_the_same_input_is_rolled_back_for_latency(tmp_path):
    env = models(tmp_path, 2, lambda path: save_colour_model(path, work=10))
    with running_server(
        CANARY_ENABLED="true", AB_WEIGHT_B="1", STICKY_COOKIE="false", **env
    ) as server:
        with server.client() as client:
            for _ in range(300):
                assert client.post("/v1/infer", json=RED).status_code == 200
                if metric_sum(server, "edgeserve_canary_rollbacks_total"):
                    break
        current = config(server)
    assert current["ab_weight_b"] == 0, current
    assert "inference time" in current["last_rollback"], current
    assert current["quarantine"]["reason"] == current["last_rollback"]


def failing_b(tmp_path) -> dict[str, str]:
    return models(tmp_path, 0, save_fails_on_real_images)


def wait_for_quarantine(server) -> dict:
    """B's quarantine, once the guard's rollback is committed."""
    return wait_until(
        "B quarantined", lambda: config(server)["quarantine"], lambda q: q is not None, timeout=20
    )


def quarantine_a_failing_b(server, client: httpx.Client) -> dict:
    """Forty requests at the server's weights, each with a fresh sticky id: B's quarantine."""
    for _ in range(40):
        client.cookies.clear()
        client.post("/v1/infer", json=RED)
    return wait_for_quarantine(server)


def test_a_failing_b_costs_at_most_five_failed_requests_per_worker(tmp_path):
    with running_server(
        CANARY_ENABLED="true",
        AB_WEIGHT_B="1",
        STICKY_COOKIE="false",
        WORKERS="2",
        **failing_b(tmp_path),
    ) as server:
        # A new connection each time, so both workers see the failing B.
        statuses = [httpx.post(server.url + "/v1/infer", json=RED).status_code for _ in range(80)]
        wait_for_quarantine(server)
        failed = statuses.count(500)
        assert 0 < failed <= 5 * 2, statuses
        assert set(statuses) <= {200, 500}, statuses
        print(f"failed user requests before the rollback: {failed} (2 workers)")


def client_errors() -> dict[str, dict]:
    """Bodies that are the client's fault, by name: the bad images are refused after B was
    chosen for them, the bad bodies before any variant is."""
    return {
        "bad base64": {"image_b64": "%%% not base64 %%%"},
        "not an image": {"image_b64": base64.b64encode(b"plain text, not a PNG").decode()},
        "too many pixels": {"image_b64": image_b64((255, 0, 0), size=MAX_SIDE + 1)},
        "no image": {"top_k": 3},
        "img_size out of range": {**RED, "img_size": 4},
    }


FORCE_B = {"X-Canary": "always"}
MAX_SIDE = 100  # MAX_IMAGE_PIXELS is this squared: a larger image is the client's fault


def test_client_errors_sent_to_b_are_never_recorded_so_only_model_failures_count(tmp_path):
    with running_server(
        CANARY_ENABLED="true",
        AB_WEIGHT_B="1",
        STICKY_COOKIE="false",
        MAX_IMAGE_PIXELS=str(MAX_SIDE**2),
        **failing_b(tmp_path),
    ) as server:
        with server.client() as client:
            forced_a = client.post("/v1/infer", json=RED, headers={"X-Canary": "never"})
            assert forced_a.headers["X-Edgeserve-Variant"] == "A", forced_a.text  # A is clean
            for name, body in client_errors().items():
                for _ in range(10):
                    r = client.post("/v1/infer", json=body, headers=FORCE_B)
                    assert 400 <= r.status_code < 500, (name, r.text)
            # Fifty client errors on B, yet the guard saw none: no rollback, B still serves.
            assert metric_sum(server, "edgeserve_canary_rollbacks_total") == 0
            assert (config(server)["quarantine"], config(server)["ab_weight_b"]) == (None, 1)
            # B's run of failures starts at its first model failure and trips at the fifth.
            failures = [client.post("/v1/infer", json=RED, headers=FORCE_B) for _ in range(5)]
            assert [r.status_code for r in failures] == [500] * 5, [r.text for r in failures]
            quarantine = wait_for_quarantine(server)
        assert "B failed 5 requests in a row" in quarantine["reason"], quarantine


@pytest.mark.parametrize(
    ("a_first", "forced"),
    [(False, RED), (True, {**RED, "img_size": 160})],
    ids=["right-after-start-before-a-served-anything", "at-a-size-a-has-not-answered"],
)
def test_b_forced_and_failing_is_rolled_back_after_five_even_where_a_has_not_answered(
    tmp_path, a_first: bool, forced: dict
):
    with running_server(CANARY_ENABLED="true", **failing_b(tmp_path)) as server:
        with server.client() as client:
            if a_first:  # A answers its default size only
                answered = client.post("/v1/infer", json=RED, headers={"X-Canary": "never"})
                assert answered.status_code == 200, answered.text
            failures = [client.post("/v1/infer", json=forced, headers=FORCE_B) for _ in range(5)]
            assert [r.status_code for r in failures] == [500] * 5, [r.text for r in failures]
            quarantine = wait_for_quarantine(server)
            after = client.post("/v1/infer", json=forced, headers=FORCE_B)
        assert "B failed 5 requests in a row" in quarantine["reason"], quarantine
        assert after.headers["X-Edgeserve-Variant"] == "A", after.text


def test_a_quarantined_b_gets_no_user_request_until_a_new_b_is_loaded(tmp_path):
    shutil.copy(REPO / "models" / "vB.onnx", tmp_path / "good.onnx")
    cookies = cookie_ids_for_b(5)
    with running_server(
        CANARY_ENABLED="true", AB_WEIGHT_B="1", STICKY_COOKIE="true", **failing_b(tmp_path)
    ) as server:
        with server.client() as client:
            quarantine_a_failing_b(server, client)
            forced = [
                client.post("/v1/infer", json=RED, headers={"X-Canary": "always"})
                for _ in range(10)
            ]
            for cookie in cookies:
                client.cookies.clear()
                forced.append(
                    client.post("/v1/infer", json=RED, headers={"Cookie": f"edgeserve_ab={cookie}"})
                )
            assert [r.headers.get("X-Edgeserve-Variant") for r in forced] == ["A"] * 15
            assert {r.status_code for r in forced} == {200}
            with server.admin() as admin:
                loaded = admin.post("/admin/models/B", json={"path": "good.onnx"})
                assert loaded.status_code == 200, loaded.text
                assert loaded.json()["quarantine"] is None
            after = client.post("/v1/infer", json=RED, headers={"X-Canary": "always"})
            assert after.headers["X-Edgeserve-Variant"] == "B", after.text


def test_an_operator_can_clear_the_quarantine(tmp_path):
    with running_server(
        CANARY_ENABLED="true", AB_WEIGHT_B="1", STICKY_COOKIE="false", **failing_b(tmp_path)
    ) as server:
        with server.client() as client:
            reason = quarantine_a_failing_b(server, client)["reason"]
            assert "in a row" in reason, reason
            with server.admin() as admin:
                cleared = admin.post("/admin/config", json={"quarantine": None})
                assert cleared.status_code == 200 and cleared.json()["quarantine"] is None
                refused = admin.post("/admin/config", json={"quarantine": {"reason": "x"}})
                assert refused.status_code == 422, refused.text
            again = client.post("/v1/infer", json=RED, headers={"X-Canary": "always"})
            assert again.status_code == 500 and "model b " in again.text, again.text


def test_shadow_keeps_running_a_quarantined_b(tmp_path):
    with running_server(
        CANARY_ENABLED="true",
        SHADOW_ENABLED="true",
        AB_WEIGHT_B="1",
        STICKY_COOKIE="false",
        **failing_b(tmp_path),
    ) as server:
        with server.client() as client:
            quarantine_a_failing_b(server, client)
            errors = metric_sum(server, "edgeserve_shadow_errors_total")
            for _ in range(5):
                assert client.post("/v1/infer", json=RED).status_code == 200
        wait_until(
            "5 more shadow errors",
            lambda: metric_sum(server, "edgeserve_shadow_errors_total"),
            lambda now: now >= errors + 5,
            timeout=20,
        )
