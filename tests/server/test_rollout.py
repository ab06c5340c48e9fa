"""Promote, hot model loads, workers that agree, and state that survives restarts."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import httpx
import pytest

from tests.support.images import ORANGE, image_b64
from tests.support.server import ADMIN_TOKEN, REPO, running_server

RED = {"image_b64": image_b64((255, 0, 0))}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def model_dir(tmp_path):
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, tmp_path / name)
    return tmp_path


def models_in(folder) -> dict[str, str]:
    return {"MODEL_VA_PATH": str(folder / "vA.onnx"), "MODEL_VB_PATH": str(folder / "vB.onnx")}


async def fire(url: str, total: int, concurrency: int, during) -> list[int]:
    """`total` inference requests, `concurrency` at a time, with `during` run in the middle."""
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                statuses.append((await client.post("/v1/infer", json=RED)).status_code)

        tasks = [asyncio.create_task(one()) for _ in range(total)]
        await asyncio.sleep(0.05)
        await asyncio.to_thread(during)
        await asyncio.gather(*tasks)
    return statuses


def test_promote_under_load_loses_no_request():
    with running_server(AB_WEIGHT_A="0.7", AB_WEIGHT_B="0.3") as server:
        promoted = {}

        def promote() -> None:
            with server.admin() as admin:
                promoted.update(admin.post("/admin/promote").json())

        statuses = asyncio.run(fire(server.url, total=400, concurrency=16, during=promote))
        assert statuses == [200] * 400, {s: statuses.count(s) for s in set(statuses)}
        assert promoted["new_a"]["name"] == "vB" and promoted["previous_a"]["name"] == "vA"
        assert (promoted["ab_weight_a"], promoted["ab_weight_b"]) == (1.0, 0.0)
        assert promoted["generation"] == 2
        with server.client() as client:
            r = client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)})
        assert (r.json()["variant"], r.json()["predictions"][0]["label"]) == ("A", "orange")


def test_both_workers_apply_a_change_and_a_promote_within_a_second():
    with running_server(WORKERS="2") as server:
        with server.admin() as admin:
            assert admin.post("/admin/config", json={"ab_weight_b": 0.4}).status_code == 200
            admin.post("/admin/promote")
        time.sleep(1.0)
        seen = []
        for _ in range(40):
            # A new connection per request so the kernel spreads them over both workers.
            r = httpx.get(server.url + "/admin/config", headers={**AUTH, "Connection": "close"})
            config = r.json()
            seen.append(
                (config["generation"], config["models"]["A"]["name"], config["ab_weight_b"])
            )
        workers = {
            json.loads(line)["worker"]
            for line in server.output().splitlines()
            if line.startswith("{") and '"route": "/admin/config"' in line
        }
    assert set(seen) == {(3, "vB", 0.0)}, set(seen)
    assert len(workers) == 2, workers


def test_hot_load_swaps_a_model_into_a_slot(model_dir):
    with running_server(**models_in(model_dir)) as server, server.admin() as admin:
        r = admin.post("/admin/models/A", json={"path": "vB.onnx"})
        assert r.status_code == 200, r.text
        assert r.json()["models"]["A"]["name"] == "vB"
        with server.client() as client:
            top = client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)}).json()
        assert top["predictions"][0]["label"] == "orange"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("../../etc/passwd", "path_not_allowed"),
        ("/etc/hostname", "path_not_allowed"),
        ("missing.onnx", "model_load_failed"),
        ("not-a-model.onnx", "model_load_failed"),
    ],
)
def test_failed_hot_load_keeps_the_old_model_serving(model_dir, path, code):
    (model_dir / "not-a-model.onnx").write_bytes(b"this is not onnx")
    with running_server(**models_in(model_dir)) as server, server.admin() as admin:
        before = admin.get("/admin/config").json()
        r = admin.post("/admin/models/B", json={"path": path})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == code, r.text
        assert admin.get("/admin/config").json() == before
        with server.client() as client:
            assert client.post("/v1/infer", json=RED).status_code == 200


def test_state_file_survives_a_restart(tmp_path):
    state_path = tmp_path / "state.json"
    with running_server(STATE_PATH=str(state_path)) as server, server.admin() as admin:
        admin.post("/admin/config", json={"ab_weight_b": 0.25, "shadow_enabled": True})
    with running_server(STATE_PATH=str(state_path)) as server, server.admin() as admin:
        config = admin.get("/admin/config").json()
    assert (config["ab_weight_b"], config["shadow_enabled"], config["generation"]) == (
        0.25,
        True,
        2,
    )


def test_corrupt_state_file_is_moved_aside_and_the_server_starts(tmp_path):
    state_path = tmp_path / "state.json"
    state_path.write_text('{"generation": "oops"')
    with running_server(STATE_PATH=str(state_path), AB_WEIGHT_B="0.1") as server:
        with server.admin() as admin:
            config = admin.get("/admin/config").json()
        assert config["ab_weight_b"] == 0.1
        assert '"event": "state_invalid"' in server.output()
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 1
