"""Retention on a real server (issue 23): after many pushes and loads the model store holds
only A, B and the previous A (and uploads younger than MODEL_UPLOAD_GRACE_SECONDS); a dry run
lists what would go and removes nothing; a version being loaded stays, whichever worker runs
the gc."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from edgeserve.inference.model import file_model_version
from tests.support.server import REPO, Server, pushed_only_env, running_server
from tests.support.uploads import (
    admissions,
    collect_now,
    load_b,
    push_and_load_many,
    push_described,
    push_file,
    save_slow_to_load,
)
from tests.support.waiting import wait_until

PUSHES = 30


def kept_versions(server: Server) -> set[str]:
    store = Path(server.env["STATE_PATH"]).parent / "models"
    return {p.name for p in store.iterdir() if not p.name.startswith(".")}


def start(tmp_path_factory, grace: str) -> Iterator[Server]:
    env = pushed_only_env(tmp_path_factory.mktemp("retention")) | {
        "MODEL_UPLOAD_GRACE_SECONDS": grace
    }
    with running_server(**env) as server:
        yield server


@pytest.fixture(scope="module")
def no_grace(tmp_path_factory) -> Iterator[Server]:
    yield from start(tmp_path_factory, "0")


@pytest.fixture(scope="module")
def an_hour_of_grace(tmp_path_factory) -> Iterator[Server]:
    yield from start(tmp_path_factory, "3600")


def test_after_30_pushes_and_loads_the_store_holds_only_a_b_and_the_previous_a(no_grace):
    config = push_and_load_many(no_grace, PUSHES)
    a, b = config["models"]["A"]["version"], config["models"]["B"]["version"]
    previous_a = config["rollback_to"]["version"]
    assert {v[:12] for v in kept_versions(no_grace)} == {a, b, previous_a}, config


def test_a_dry_run_lists_what_would_go_and_removes_nothing(no_grace):
    with no_grace.admin() as admin:
        orphan = push_described(no_grace, 1000)  # old at once: the grace period is 0
        r = admin.post("/admin/gc", json={"dry_run": True})
        assert r.status_code == 200, r.text
        assert [e["version"] for e in r.json()["removed"]] == [orphan[:12]], r.text
        assert orphan in kept_versions(no_grace)
        r = admin.post("/admin/gc", json={})
        assert [e["version"] for e in r.json()["removed"]] == [orphan[:12]], r.text
    assert orphan not in kept_versions(no_grace)


def test_an_upload_younger_than_the_grace_period_is_kept(an_hour_of_grace):
    pushed = push_described(an_hour_of_grace, 1)
    with an_hour_of_grace.admin() as admin:
        r = admin.post("/admin/gc", json={})
    assert r.status_code == 200, r.text
    assert {"version": pushed[:12], "why": "young upload"} in r.json()["kept"], r.text
    assert pushed in kept_versions(an_hour_of_grace)


def test_the_start_model_of_a_is_kept(an_hour_of_grace):
    a = file_model_version(REPO / "models" / "vA.onnx")
    with an_hour_of_grace.admin() as admin:
        r = admin.post("/admin/gc", json={"dry_run": True})
    assert {"version": a[:12], "why": "A"} in r.json()["kept"], r.text


def test_a_gc_during_a_load_of_an_old_push_keeps_it_and_the_load_succeeds(tmp_path):
    slow = save_slow_to_load(tmp_path / "slow.onnx")
    env = pushed_only_env(tmp_path) | {
        "WORKERS": "2",
        "WARMUP_RUNS": "1",
        "MODEL_UPLOAD_GRACE_SECONDS": "0",  # every push is older than the grace at once
    }
    with running_server(**env) as server, ThreadPoolExecutor(1) as pool:
        version = push_file(server, slow)
        loading = pool.submit(load_b, server, version)
        wait_until("the load to admit the model", lambda: admissions(server), bool)
        answers = [collect_now(server) for _ in range(4)]
        assert not loading.done(), "the load ended before gc ran: make it slower"
        r = loading.result()
        assert r.status_code == 200, r.text
        assert version in kept_versions(server), answers
        for answer in answers:
            assert {"version": version[:12], "why": "loading"} in answer["kept"], answer
