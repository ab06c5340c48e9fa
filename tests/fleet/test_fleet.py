"""A fleet on one Redis: three instances with WORKERS=2 serve one rollout state (issue 10).

Real processes throughout: a real redis-server on a free port and real `edgeserve serve`
instances, each with two workers, all with STATE_URL pointing at it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis as redis_client
from typer.testing import CliRunner, Result

from edgeserve.cli import app
from tests.fleet.fleet import (
    AUTH,
    Watcher,
    percentile,
    running_fleet,
    sample_config,
    start_instances,
)
from tests.support.images import image_b64
from tests.support.metrics import metric_sum
from tests.support.models import save_fails_on_real_images
from tests.support.redis import RedisServer, running_redis
from tests.support.server import ADMIN_TOKEN, REPO, Server, stop_server
from tests.support.waiting import wait_until, wait_until_async

INSTANCES, WORKERS = 3, 2
CHANGES = 12
PROPAGATION_LIMIT_SECONDS = 1.0
RED = {"image_b64": image_b64((255, 0, 0))}


@pytest.fixture(scope="module")
def redis_for_fleet() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(scope="module")
def fleet(redis_for_fleet: RedisServer) -> Iterator[list[Server]]:
    with running_fleet(redis_for_fleet, INSTANCES) as servers:
        yield servers


def config_of(server: Server) -> dict[str, Any]:
    with server.admin() as admin:
        response = admin.get("/admin/config", headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    return response.json()


def change(server: Server, **fields: Any) -> dict[str, Any]:
    with server.admin() as admin:
        response = admin.post("/admin/config", json=fields)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_change_through_any_instance_is_served_by_every_worker_within_a_second(fleet):
    async def measure() -> list[float]:
        delays: list[float] = []
        async with Watcher(fleet) as watcher:
            await watcher.until_every_worker_serves(0, time.monotonic(), INSTANCES * WORKERS)
            for n in range(CHANGES):
                through = fleet[n % INSTANCES]
                answered = await asyncio.to_thread(change, through, ab_weight_b=0.1 + n / 100)
                made = time.monotonic()
                first_seen = await watcher.until_every_worker_serves(
                    answered["generation"], made, INSTANCES * WORKERS
                )
                delays.extend(max(0.0, seconds) for seconds in first_seen.values())
        return delays

    delays = asyncio.run(measure())
    p50, p99 = percentile(delays, 0.5), percentile(delays, 0.99)
    print(
        f"\npropagation over {CHANGES} changes x {INSTANCES * WORKERS} workers: "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
    )
    assert len(delays) == CHANGES * INSTANCES * WORKERS, len(delays)
    assert max(delays) < PROPAGATION_LIMIT_SECONDS, sorted(delays)[-5:]


def test_an_instance_started_later_serves_the_fleet_state_from_its_first_request(
    fleet, redis_for_fleet
):
    current = change(fleet[0], ab_weight_a=0.25, ab_weight_b=0.75, shadow_enabled=True)
    # Its own environment says otherwise: that only seeds an empty store.
    (late,) = start_instances(redis_for_fleet, 1, AB_WEIGHT_A="1.0", AB_WEIGHT_B="0.0")
    try:

        async def first_answers() -> list[dict[str, Any]]:
            async with httpx.AsyncClient(base_url=late.url, timeout=10) as client:
                samples = [await sample_config(client, 0) for _ in range(20)]
            return [sample.config for sample in samples]

        answers = asyncio.run(first_answers())
    finally:
        stop_server(late)
    wanted = {k: current[k] for k in ("generation", "ab_weight_a", "ab_weight_b", "shadow_enabled")}
    for answer in answers:
        assert {k: answer[k] for k in wanted} == wanted, answer
    # Each worker was already on the fleet's generation when it became ready, not just after.
    ready = [json.loads(line) for line in late.output().splitlines() if '"models_ready"' in line]
    assert [r["generation"] for r in ready] == [current["generation"]] * WORKERS, ready


def test_concurrent_changes_through_different_instances_are_all_kept(fleet):
    clients, changes = 3, 50
    fields = ("ab_weight_a", "ab_weight_b", "sticky_cookie")

    def value(client: int, n: int) -> Any:
        return (1.0 + n, 0.01 * (n + 1), n % 2 == 0)[client]

    async def run() -> list[list[dict[str, Any]]]:
        async def one_client(client: int) -> list[dict[str, Any]]:
            async with httpx.AsyncClient(
                base_url=fleet[client].url, headers=AUTH, timeout=30
            ) as http:
                responses = await asyncio.gather(
                    *(
                        http.post("/admin/config", json={fields[client]: value(client, n)})
                        for n in range(changes)
                    )
                )
            for response in responses:
                assert response.status_code == 200, response.text
            return [response.json() for response in responses]

        return await asyncio.gather(*(one_client(c) for c in range(clients)))

    before = config_of(fleet[0])["generation"]
    answers = asyncio.run(run())
    generations = sorted(a["generation"] for answered in answers for a in answered)
    assert generations == list(range(before + 1, before + 1 + clients * changes)), generations
    # Each field ends at the value its client wrote last (the highest generation of its writes).

    def written_last(client: int) -> Any:
        return value(client, max(range(changes), key=lambda n: answers[client][n]["generation"]))

    wanted = ({fields[c]: written_last(c) for c in range(clients)}, before + clients * changes)

    def served() -> list[tuple[dict[str, Any], int]]:
        views = [config_of(server) for server in fleet for _ in range(4)]
        return [({k: v[k] for k in fields}, v["generation"]) for v in views]

    wait_until(
        f"every worker to serve {wanted}",
        served,
        lambda views: all(view == wanted for view in views),
        timeout=5,
        interval=0.1,
    )


def test_a_canary_rollback_on_one_instance_reaches_every_instance(tmp_path):
    shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "vA.onnx")
    save_fails_on_real_images(tmp_path / "broken.onnx")
    env = {
        "MODEL_VA_PATH": str(tmp_path / "vA.onnx"),
        "MODEL_VB_PATH": str(tmp_path / "broken.onnx"),
        "CANARY_ENABLED": "true",
        "AB_WEIGHT_A": "0.5",
        "AB_WEIGHT_B": "0.5",
        "STICKY_COOKIE": "false",
        "CANARY_MIN_SAMPLES": "5",
        "WORKERS": "1",
    }
    with running_redis() as redis, running_fleet(redis, 2, **env) as (judged, bystander):
        with judged.client() as client:  # only this instance sees B fail
            statuses = [client.post("/v1/infer", json=RED).status_code for _ in range(60)]
        assert 500 in statuses
        rolled_back = config_of(judged)
        assert rolled_back["ab_weight_b"] == 0 and rolled_back["last_rollback"], rolled_back
        fields = ("generation", "ab_weight_b", "last_rollback")
        wanted = {k: rolled_back[k] for k in fields}
        wait_until(  # reaching it is the point here; timing is tested above
            f"the bystander to serve the rollback {wanted}",
            lambda: {k: config_of(bystander)[k] for k in fields},
            lambda view: view == wanted,
            timeout=5,
        )
        with bystander.client() as client:
            served = [client.post("/v1/infer", json=RED) for _ in range(20)]
        assert {r.headers["X-Edgeserve-Variant"] for r in served} == {"A"}, served


def test_an_instance_finds_a_model_another_instance_loaded_in_its_own_model_dir(tmp_path):
    def host(name: str) -> dict[str, str]:
        """A pod's own disk: the image's models (vC included) and its state folder."""
        models = tmp_path / name / "models"
        models.mkdir(parents=True)
        for model in ("vA", "vB"):
            shutil.copy(REPO / "models" / f"{model}.onnx", models / f"{model}.onnx")
        shutil.copy(REPO / "models" / "vA.onnx", models / "vC.onnx")
        return {
            "MODEL_VA_PATH": str(models / "vA.onnx"),
            "MODEL_VB_PATH": str(models / "vB.onnx"),
            "STATE_PATH": str(tmp_path / name / "state" / "state.json"),
            "WORKERS": "1",
        }

    first_host, second_host = host("first"), host("second")
    with running_redis() as redis:
        with running_fleet(redis, 1, **first_host) as (first,), first.admin() as admin:
            loaded = admin.post("/admin/models/B", json={"path": "vC.onnx"})
            assert loaded.status_code == 200, loaded.text
        shutil.rmtree(tmp_path / "first")  # that pod is gone, and its copy of vC with it
        with running_fleet(redis, 1, **second_host) as (second,):
            config = config_of(second)
    assert config["models"]["B"]["version"] == loaded.json()["models"]["B"]["version"], config
    assert (config["models"]["B"]["name"], config["in_sync"]) == ("vC", True), config


def cli(*args: str, urls: list[str]) -> Result:
    options = [part for url in urls for part in ("--url", url)]
    env = {"ADMIN_TOKEN": ADMIN_TOKEN, "EDGESERVE_URL": None, "COLUMNS": "200"}
    return CliRunner().invoke(app, [*args, *options], env=env)


def test_one_url_changes_the_fleet_and_a_drift_check_over_every_instance_confirms_it(fleet):
    changed = cli("admin", "config", "set", "--weight-b", "0.35", urls=[fleet[1].url])
    assert changed.exit_code == 0, changed.output
    generation = config_of(fleet[1])["generation"]
    checked = cli("admin", "config", "get", urls=[server.url for server in fleet])
    assert checked.exit_code == 0, checked.output
    assert f"no drift: {INSTANCES} instances serve generation {generation}," in checked.stdout, (
        checked.stdout
    )


def test_a_change_sent_to_every_instance_of_a_shared_store_reports_no_drift(fleet):
    before = config_of(fleet[0])["generation"]
    result = cli("admin", "config", "set", "--no-shadow", urls=[server.url for server in fleet])
    assert result.exit_code == 0, result.output
    # Each instance wrote the change once: three generations, and every instance on the last.
    assert f"no drift: {INSTANCES} instances serve generation {before + INSTANCES}," in (
        result.stdout
    ), result.stdout


def test_a_fleet_survives_redis_dying_and_coming_back_empty():
    with running_redis() as redis, running_fleet(redis, 2) as servers:
        held = change(servers[0], ab_weight_a=0.6, ab_weight_b=0.4)
        asyncio.run(_redis_outage(redis, servers, held))


async def _redis_outage(redis: RedisServer, servers: list[Server], held: dict[str, Any]) -> None:
    statuses: list[int] = []
    stop = asyncio.Event()

    async def traffic(server: Server) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                response = await client.post("/v1/infer", json=RED)
                statuses.append(response.status_code)

    loops = [asyncio.create_task(traffic(server)) for server in servers for _ in range(2)]
    held_view = {k: held[k] for k in ("generation", "ab_weight_a", "ab_weight_b")}
    try:
        await wait_until_async(
            f"{len(loops)} inferences answered before Redis dies",
            lambda: len(statuses),
            lambda answered: answered >= len(loops),
        )
        redis.kill()
        noticed = await _until(
            "every worker to see Redis unreachable",
            lambda: all(_every_worker_says(s, "unreachable") for s in servers),
        )
        for server in servers:
            await _check_down(server)
        served_while_down = len(statuses)
        redis.start()  # empty: nothing was persisted
        reseeded = await _until(
            "Redis re-seeded with the state the fleet held",
            lambda: _stored_view(redis, held_view) == held_view,
            15,
        )
        back = await _until(
            "every worker back on Redis",
            lambda: all(_every_worker_says(s, "redis") for s in servers),
        )
        after = await asyncio.to_thread(change, servers[1], ab_weight_b=0.2)
        assert after["generation"] == held["generation"] + 1, after
        await _until(
            f"every worker to serve generation {after['generation']}",
            lambda: all(_every_worker_serves(s, after["generation"]) for s in servers),
        )
    finally:
        stop.set()
        await asyncio.gather(*loops)
    print(
        f"\nRedis killed: all workers polled as unreachable within {noticed:.1f} s; "
        f"restarted empty: re-seeded with generation {held['generation']} after "
        f"{reseeded:.1f} s, every worker back on redis {back:.1f} s later; "
        f"{len(statuses)} inferences ({served_while_down} before the restart), "
        f"statuses {sorted(set(statuses))}"
    )
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}


async def _until(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds until `condition` held, polled in a thread (it blocks); fails after `timeout`."""
    started = time.monotonic()
    await wait_until_async(
        what, lambda: asyncio.to_thread(condition), timeout=timeout, interval=0.1
    )
    return time.monotonic() - started


def _views(server: Server, count: int = 8) -> list[dict[str, Any]]:
    """`count` configs over new connections: both workers answer some with high odds."""
    return [config_of(server) for _ in range(count)]


def _every_worker_says(server: Server, store: str) -> bool:
    return all(view["state_store"] == store for view in _views(server))


def _every_worker_serves(server: Server, generation: int) -> bool:
    return all(view["generation"] == generation for view in _views(server))


def _stored_view(redis: RedisServer, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The fields named in `fields` of the document Redis holds, or None when it holds none."""
    with redis_client.Redis.from_url(redis.url) as raw:
        stored = raw.get("edgeserve:state")
    return None if stored is None else {k: json.loads(stored)[k] for k in fields}


async def _check_down(server: Server) -> None:
    """Redis down: still ready, admin writes refused with 503 state_unavailable, gauge at 0."""

    def check() -> None:
        with server.client() as client:
            assert client.get("/ready").status_code == 200
        with server.admin() as admin:
            refused = admin.post("/admin/config", json={"ab_weight_b": 0.9})
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "state_unavailable" and "\n" not in error["message"], error
        assert metric_sum(server, "edgeserve_state_store_up") == 0

    await asyncio.to_thread(check)
