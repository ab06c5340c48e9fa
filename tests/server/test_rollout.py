"""Promote, hot model loads, workers that agree, and state that survives restarts."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import httpx
import pytest

from tests.support.images import ORANGE, image_b64
from tests.support.metrics import metric_sum
from tests.support.server import ADMIN_TOKEN, REPO, running_server
from tests.support.waiting import wait_until

RED = {"image_b64": image_b64((255, 0, 0))}
# About 15 ms of work per request: enough that 16 at a time are seen in flight on /metrics.
BUSY = {"image_b64": image_b64((255, 0, 0), size=600), "img_size": 512}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def model_dir(tmp_path):
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, tmp_path / name)
    return tmp_path


def models_in(folder) -> dict[str, str]:
    return {"MODEL_VA_PATH": str(folder / "vA.onnx"), "MODEL_VB_PATH": str(folder / "vB.onnx")}


async def fire_around(url: str, total: int, concurrency: int, during) -> list[dict]:
    """`total` inference requests, `concurrency` at a time; `during` runs while some are in flight.

    Each answer is {"status", "variant", "model"} so a test can tell which model served it.
    """
    answers: list[dict] = []
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                r = await client.post("/v1/infer", json=BUSY)
            body = r.json() if r.status_code == 200 else {}
            answers.append(
                {
                    "status": r.status_code,
                    "variant": body.get("variant"),
                    "model": body.get("model", {}).get("name"),
                }
            )

        tasks = [asyncio.create_task(one()) for _ in range(total)]
        await asyncio.to_thread(during)
        await asyncio.gather(*tasks)
    return answers


def test_promote_under_load_loses_no_request():
    with running_server(AB_WEIGHT_A="0.7", AB_WEIGHT_B="0.3") as server:
        promoted: dict = {}

        def promote_once_requests_are_in_flight() -> None:
            wait_until(
                "8 inference requests in flight",
                lambda: metric_sum(server, "edgeserve_inflight_requests"),
                lambda in_flight: in_flight >= 8,
                timeout=30,
            )
            with server.admin() as admin:
                promoted.update(admin.post("/admin/promote").json())

        answers = asyncio.run(
            fire_around(
                server.url,
                total=400,
                concurrency=16,
                during=promote_once_requests_are_in_flight,
            )
        )
        statuses = [a["status"] for a in answers]
        assert statuses == [200] * 400, {s: statuses.count(s) for s in set(statuses)}
        # The promote landed mid-traffic: slot A answered with vA before it and vB after it.
        served_by_a = {a["model"] for a in answers if a["variant"] == "A"}
        assert served_by_a == {"vA", "vB"}, served_by_a
        assert promoted["new_a"]["name"] == "vB" and promoted["previous_a"]["name"] == "vA"
        assert (promoted["ab_weight_a"], promoted["ab_weight_b"]) == (1.0, 0.0)
        assert promoted["generation"] == 2
        with server.client() as client:
            r = client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)})
        assert (r.json()["variant"], r.json()["predictions"][0]["label"]) == ("A", "orange")


def test_both_workers_apply_a_change_and_a_promote_within_a_second():
    changed_view = (3, "vB", 0.0)  # generation, model in A, B's weight after both changes
    with running_server(WORKERS="2") as server:
        with server.admin() as admin:
            assert admin.post("/admin/config", json={"ab_weight_b": 0.4}).status_code == 200
            assert admin.post("/admin/promote").status_code == 200
        changed = time.monotonic()
        answers: list[tuple[str, float, tuple]] = []  # request id, seconds after, view

        def each_worker_served_the_change() -> bool:
            # A new connection per request so the kernel hands it to either worker.
            request_id = f"rollout-{len(answers)}"
            config = httpx.get(
                server.url + "/admin/config",
                headers={**AUTH, "Connection": "close", "X-Request-ID": request_id},
            ).json()
            view = (config["generation"], config["models"]["A"]["name"], config["ab_weight_b"])
            answers.append((request_id, time.monotonic() - changed, view))
            worker_of = workers_of(server)
            return len({worker_of.get(r) for r, _, v in answers if v == changed_view} - {None}) == 2

        wait_until(
            "both workers to serve the change",
            each_worker_served_the_change,
            timeout=20,
            interval=0.01,
            context=lambda: f"last answer: {answers[-1]}",
        )
        worker_of = workers_of(server)
    first_served: dict[int, float] = {}
    for request_id, after, view in answers:
        if view == changed_view:
            first_served.setdefault(worker_of[request_id], after)
    assert len(first_served) == 2 and max(first_served.values()) <= 1.0, first_served
    # Once a worker served the change, it never answered with the old state again.
    for request_id, after, view in answers:
        worker = worker_of.get(request_id)
        if worker is not None and after > first_served[worker]:
            assert view == changed_view, (worker, after, view)


def workers_of(server) -> dict[str, int]:
    """The worker pid that answered each request, by X-Request-ID, from the JSON request log."""
    records = (json.loads(line) for line in server.output().splitlines() if line.startswith("{"))
    return {
        record["trace_id"]: record["worker"]
        for record in records
        if record.get("route") == "/admin/config" and "worker" in record
    }


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
