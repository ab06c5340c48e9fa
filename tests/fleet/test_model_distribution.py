"""Pushed models travel through Redis (issue 23): instances with separate, empty MODEL_DIRs on
one real Redis all serve a model pushed to one of them; an instance started later fetches it
at start; the same file pushed twice is stored once; a blob altered in Redis is refused by the
instance that fetches it, which keeps serving its model; a gc leaves in Redis what a load on
its instance holds."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis as redis_client
from typer.testing import CliRunner

from edgeserve.cli import app
from edgeserve.inference.model import file_model_version
from edgeserve.inference.signature import new_key_pair, sign, signature_path
from edgeserve.state.model_store import ModelStore
from edgeserve.state.shared_models import SharedModels, chunk_key
from tests.support.redis import RedisServer
from tests.support.server import (
    ADMIN_TOKEN,
    REPO,
    Server,
    base_env,
    pushed_only_env,
    start_server,
    stop_server,
)
from tests.support.uploads import (
    SHA256,
    admissions,
    collect_now,
    load_b,
    push_and_load_many,
    push_file,
    save_slow_to_load,
)
from tests.support.waiting import wait_until


def instance(redis: RedisServer, root: Path, **overrides: str) -> Server:
    return start_server(base_env(**pushed_only_env(root) | {"STATE_URL": redis.url, **overrides}))


def served_b(server: Server) -> str | None:
    with server.admin() as admin:
        model = admin.get("/admin/config").json()["models"].get("B")
    return model["version"] if model else None


def load_upload(server: Server, model: Path) -> None:
    args = ["admin", "load", "B", "--upload", str(model), "--url", server.url]
    result = CliRunner().invoke(app, [*args, "--token", ADMIN_TOKEN], env={"ADMIN_TOKEN": None})
    assert result.exit_code == 0, result.output


def keys(redis: RedisServer, pattern: str) -> list[bytes]:
    with redis_client.Redis(port=redis.port) as client:
        return sorted(client.scan_iter(match=pattern))


@pytest.fixture
def new_model(tmp_path) -> Path:
    """A model no instance has: vB's bytes, described by a sidecar of its own."""
    model = tmp_path / "laptop" / "new.onnx"
    model.parent.mkdir()
    shutil.copy(REPO / "models" / "vB.onnx", model)
    model.with_suffix(".json").write_text('{"interpolation": "nearest"}')
    return model


@pytest.fixture
def pair(redis_server, tmp_path) -> Iterator[list[Server]]:
    servers = [instance(redis_server, tmp_path / name) for name in ("one", "two")]
    try:
        yield servers
    finally:
        for server in servers:
            stop_server(server)


def test_a_model_pushed_to_one_instance_is_served_by_both_within_5_s(pair, new_model):
    load_upload(pair[0], new_model)
    version = file_model_version(new_model)[:12]
    for server in pair:
        wait_until(
            f"{server.url} to serve B {version}",
            lambda s=server: served_b(s),
            lambda served: served == version,
            timeout=5,
        )


def test_an_instance_started_later_fetches_the_model_at_start(redis_server, tmp_path, new_model):
    first = instance(redis_server, tmp_path / "first")
    try:
        load_upload(first, new_model)
    finally:
        stop_server(first)
    shutil.rmtree(tmp_path / "first")  # the bytes now live only in Redis
    later = instance(redis_server, tmp_path / "later")
    try:
        assert served_b(later) == file_model_version(new_model)[:12]
        kept = Path(later.env["STATE_PATH"]).parent / "models" / file_model_version(new_model)
        assert (kept / "new.onnx").read_bytes() == new_model.read_bytes()
    finally:
        stop_server(later)


def test_the_same_file_pushed_twice_is_stored_once(pair, redis_server, new_model):
    load_upload(pair[0], new_model)
    stored = keys(redis_server, "edgeserve:*:*")
    load_upload(pair[1], new_model)
    assert keys(redis_server, "edgeserve:*:*") == stored


def test_a_blob_altered_in_redis_is_refused_and_the_instance_keeps_its_model(
    redis_server, tmp_path, new_model
):
    server = instance(redis_server, tmp_path / "fetcher")
    try:
        # Another instance shared the model, then someone altered one of its chunks.
        elsewhere = ModelStore(tmp_path / "elsewhere")
        kept = elsewhere.keep(new_model)
        SharedModels(redis_server.url, elsewhere).share(kept)
        (chunk,) = keys(redis_server, chunk_key("*", 0))
        with redis_client.Redis(port=redis_server.port) as client:
            client.setrange(chunk, 100, b"\xff\xff\xff\xff")
        before = served_b(server)
        with server.admin() as admin:
            r = admin.post("/admin/models/B", json={"version": kept.version})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "model_changed", r.text
        assert served_b(server) == before
        assert not list((Path(server.env["STATE_PATH"]).parent / "models").glob(f"{kept.version}*"))
    finally:
        stop_server(server)


def test_after_30_pushes_and_loads_redis_holds_only_what_retention_keeps(redis_server, tmp_path):
    server = instance(redis_server, tmp_path / "busy", MODEL_UPLOAD_GRACE_SECONDS="0")
    try:
        config = push_and_load_many(server, 30)
        # A model with bytes of its own that no slot names: its chunks must go with it.
        elsewhere = ModelStore(tmp_path / "elsewhere")
        SharedModels(redis_server.url, elsewhere).share(elsewhere.keep(REPO / "models" / "vA.onnx"))
        with server.admin() as admin:
            assert admin.post("/admin/gc", json={}).status_code == 200
    finally:
        stop_server(server)
    kept = {config["models"]["A"]["version"], config["models"]["B"]["version"]}
    kept.add(config["rollback_to"]["version"])
    manifests = {
        key.decode().rsplit(":", 1)[1][:12] for key in keys(redis_server, "edgeserve:model:*")
    }
    assert manifests == kept and len(kept) == 3, config
    # The 30 versions share vB's bytes: one blob, named by their sha256.
    assert keys(redis_server, "edgeserve:blob:*") == [chunk_key(SHA256, 0).encode()]


def test_a_gc_during_a_load_leaves_the_version_in_redis(redis_server, tmp_path):
    server = instance(
        redis_server, tmp_path / "one", MODEL_UPLOAD_GRACE_SECONDS="0", WARMUP_RUNS="1"
    )
    try:
        version = push_file(server, save_slow_to_load(tmp_path / "slow.onnx"))
        store = ModelStore(Path(server.env["STATE_PATH"]).parent / "models")
        shared = SharedModels(redis_server.url, store)
        shared.share(store.find(version))  # in Redis before the load, old at once (grace 0)
        shared.close()
        with ThreadPoolExecutor(1) as pool:
            loading = pool.submit(load_b, server, version)
            wait_until("the load to admit the model", lambda: admissions(server), bool)
            answer = collect_now(server)
            assert not loading.done(), "the load ended before gc ran: make it slower"
            assert keys(redis_server, f"edgeserve:model:{version}"), answer
            assert loading.result().status_code == 200
    finally:
        stop_server(server)
    assert version[:12] not in answer["removed_from_redis"], answer


def test_a_signature_altered_in_redis_is_refused_by_the_instance_that_fetches_it(
    redis_server, tmp_path, new_model
):
    trusted_private, trusted_public = new_key_pair()
    other_private, _ = new_key_pair()
    (tmp_path / "trusted.pub").write_bytes(trusted_public)
    model_a = tmp_path / "vA.onnx"
    shutil.copy(REPO / "models" / "vA.onnx", model_a)
    signature_path(model_a).write_text(sign(trusted_private, file_model_version(model_a)))
    signature_path(new_model).write_text(sign(trusted_private, file_model_version(new_model)))
    elsewhere = ModelStore(tmp_path / "elsewhere")
    kept = elsewhere.keep(new_model)
    SharedModels(redis_server.url, elsewhere).share(kept)
    with redis_client.Redis(port=redis_server.port) as client:
        client.hset(
            f"edgeserve:model:{kept.version}", "signature", sign(other_private, kept.version)
        )
    env = {"MODEL_VA_PATH": str(model_a), "MODEL_TRUSTED_KEYS": str(tmp_path / "trusted.pub")}
    server = instance(redis_server, tmp_path / "fetcher", **env)
    try:
        with server.admin() as admin:
            r = admin.post("/admin/models/B", json={"version": kept.version})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "model_signature_invalid", r.text
        assert served_b(server) is None
    finally:
        stop_server(server)


def test_a_hanging_redis_makes_a_load_answer_503_within_2_s_and_changes_nothing(
    redis_server, tmp_path, new_model
):
    server = instance(redis_server, tmp_path / "hung")
    try:
        shutil.copy(new_model, Path(server.env["MODEL_DIR"]) / "new.onnx")
        os.kill(redis_server.process.pid, signal.SIGSTOP)  # answers nothing, drops nothing
        try:
            with server.admin() as admin:
                started = time.monotonic()
                r = admin.post("/admin/models/B", json={"path": "new.onnx"})
                took = time.monotonic() - started
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "state_unavailable", r.text
        assert took < 2.0, took
        assert served_b(server) is None
    finally:
        stop_server(server)
