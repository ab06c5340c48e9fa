"""Rollback: the A of before the last promote serves again, with no failed request."""

from __future__ import annotations

import asyncio

import httpx

from edgeserve.inference.model import file_version
from tests.support.images import image_b64
from tests.support.metrics import metric_sum
from tests.support.server import ADMIN_TOKEN, REPO, running_server

RED = {"image_b64": image_b64((255, 0, 0))}
# About 15 ms of work per request: the rollback's load and warm-up happen while they flow.
BUSY = {"image_b64": image_b64((255, 0, 0), size=600), "img_size": 512}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VA_VERSION = file_version(REPO / "models" / "vA.onnx")


async def answers_during(url: str, change: str, total: int = 200) -> tuple[list, dict]:
    """`total` inference requests, 8 at a time, with POST `change` sent while they flow."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        semaphore = asyncio.Semaphore(8)

        async def one() -> httpx.Response:
            async with semaphore:
                return await client.post("/v1/infer", json=BUSY)

        tasks = [asyncio.create_task(one()) for _ in range(total)]
        await asyncio.sleep(0.05)  # some requests are in flight when the change is sent
        changed = await client.post(change, headers=AUTH)
        answers = await asyncio.gather(*tasks)
    return answers, changed.json()


def test_rollback_after_a_promote_serves_the_old_a_with_no_failed_request():
    with running_server(WARMUP_RUNS="0") as server:
        with server.admin() as admin:
            assert admin.post("/admin/promote").status_code == 200
        answers, body = asyncio.run(answers_during(server.url, "/admin/rollback"))
        with server.client() as client:
            after = client.post("/v1/infer", json=RED).json()
    assert [r.status_code for r in answers if r.status_code != 200] == []
    served = {r.json()["model"]["version"] for r in answers}
    assert VA_VERSION in served and len(served) == 2, served  # both As answered during it
    assert body["restored_a"]["version"] == VA_VERSION, body
    assert (after["variant"], after["model"]["version"]) == ("A", VA_VERSION), after


def test_rollback_without_a_promote_is_a_409_that_says_why():
    with running_server(WARMUP_RUNS="0") as server, server.admin() as admin:
        r = admin.post("/admin/rollback")
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_previous_a", r.text


def test_a_rollback_is_persisted_and_survives_a_restart(tmp_path):
    env = {"STATE_PATH": str(tmp_path / "state.json"), "WARMUP_RUNS": "0"}
    with running_server(**env) as server, server.admin() as admin:
        assert admin.post("/admin/promote").status_code == 200
        assert admin.post("/admin/rollback").status_code == 200
    with running_server(**env) as server, server.admin() as admin:
        config = admin.get("/admin/config").json()
    assert config["models"]["A"]["version"] == VA_VERSION, config


def test_a_successful_promote_clears_the_last_rollback():
    with running_server(WARMUP_RUNS="0") as server, server.admin() as admin:
        failed = {"last_rollback": "an earlier rollout failed its gate"}
        assert admin.post("/admin/config", json=failed).status_code == 200
        r = admin.post("/admin/promote")
    assert r.status_code == 200 and r.json()["last_rollback"] is None, r.text


def test_a_promote_empties_b_so_shadow_never_compares_a_version_with_itself():
    with running_server(WARMUP_RUNS="0", SHADOW_ENABLED="true") as server:
        with server.admin() as admin:
            promoted = admin.post("/admin/promote").json()
        assert set(promoted["models"]) == {"A"} and promoted["shadow_enabled"], promoted
        compared = metric_sum(server, "edgeserve_shadow_comparisons_total")
        with server.client() as client:
            answers = [client.post("/v1/infer", json=RED) for _ in range(20)]
        assert {(r.status_code, r.json()["variant"]) for r in answers} == {(200, "A")}
        with server.admin() as admin:
            assert admin.post("/admin/promote").json()["error"]["code"] == "no_model_b"
        assert metric_sum(server, "edgeserve_shadow_comparisons_total") == compared
