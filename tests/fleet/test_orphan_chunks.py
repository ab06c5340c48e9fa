"""Chunks no manifest names (a share refused part way) do not stay in Redis: the refused share
deletes what it wrote, and gc removes the unnamed chunks left untouched for the grace, never
chunks a manifest names nor those of a share still being written."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
import redis as redis_client

from edgeserve.errors import StateUnavailable
from edgeserve.state.model_store import ModelStore
from edgeserve.state.retention import Plan
from edgeserve.state.shared_models import CHUNK_BYTES, SharedModels, chunk_key, manifest_key
from tests.support.redis import RedisServer
from tests.support.server import REPO, base_env, pushed_only_env, start_server, stop_server

CHUNKS = 6
"""A model this many chunks long, so a Redis at maxmemory can take some of them but not all."""


def blob_keys(client: redis_client.Redis) -> list[bytes]:
    return sorted(client.scan_iter(match="edgeserve:blob:*"))


def fill_to_maxmemory(client: redis_client.Redis, room: int) -> None:
    """Redis refuses a write (noeviction) once it holds more than maxmemory: leave `room`.
    A chunk costs Redis about 1.3 MiB (allocator classes, the query buffer): 4 MiB takes some
    of CHUNKS, not all."""
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", str(used + room))


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis_client.Redis]:
    with redis_client.Redis(port=redis_server.port) as opened:
        yield opened


@pytest.fixture
def big_model(tmp_path: Path) -> Path:
    model = tmp_path / "laptop" / "big.onnx"
    model.parent.mkdir()
    model.write_bytes(os.urandom(CHUNKS * CHUNK_BYTES - 1000))
    return model


def share_counting(shared: SharedModels, kept) -> list[str]:
    """Share `kept` (refused) and answer the chunk keys Redis took before it refused."""
    taken: list[str] = []
    put = shared.chunks.set

    def counted(key: str, value: bytes) -> object:
        answer = put(key, value)
        taken.append(key)
        return answer

    shared.chunks.set = counted  # type: ignore[method-assign]
    with pytest.raises(StateUnavailable, match="maxmemory"):
        shared.share(kept)
    return taken


def test_a_share_refused_part_way_by_maxmemory_leaves_no_chunk_behind(
    redis_server, client, tmp_path, big_model
):
    store = ModelStore(tmp_path / "store")
    kept = store.keep(big_model)
    shared = SharedModels(redis_server.url, store)
    fill_to_maxmemory(client, room=4 * CHUNK_BYTES)
    taken = share_counting(shared, kept)
    assert 0 < len(taken) < CHUNKS, taken  # refused part way, not at the first chunk
    assert blob_keys(client) == []
    assert not client.exists(manifest_key(kept.version))
    shared.close()


def test_a_refused_share_keeps_the_chunks_another_versions_manifest_names(
    redis_server, client, tmp_path, big_model
):
    store = ModelStore(tmp_path / "store")
    shared = SharedModels(redis_server.url, store)
    shared.share(store.keep(big_model))
    stored = blob_keys(client)
    assert len(stored) == CHUNKS
    # The same bytes under another version (a sidecar of its own), refused at once.
    big_model.with_suffix(".json").write_text('{"interpolation": "nearest"}')
    other = store.keep(big_model)
    fill_to_maxmemory(client, room=-CHUNK_BYTES)
    with pytest.raises(StateUnavailable, match="maxmemory"):
        shared.share(other)
    assert blob_keys(client) == stored
    shared.close()


def test_a_share_refused_while_redis_is_down_answers_its_own_error(
    redis_server, tmp_path, big_model, monkeypatch
):
    """The clean-up cannot reach Redis either: the share's error is still what is raised."""
    store = ModelStore(tmp_path / "store")
    shared = SharedModels(redis_server.url, store)
    put = shared.chunks.set

    def dies_after_first(key: str, value: bytes) -> object:
        answer = put(key, value)
        redis_server.kill()
        return answer

    monkeypatch.setattr(shared.chunks, "set", dies_after_first)
    with pytest.raises(StateUnavailable, match=r"cannot share model big\.onnx"):
        shared.share(store.keep(big_model))
    shared.close()


def put_unnamed(client: redis_client.Redis, name: bytes, chunks: range) -> str:
    """Chunks of bytes no manifest names, as a share cut off part way leaves them."""
    sha256 = hashlib.sha256(name).hexdigest()
    for index in chunks:
        client.set(chunk_key(sha256, index), name * 100)
    return sha256


def test_gc_removes_unnamed_chunks_older_than_the_grace_and_keeps_younger_ones(
    redis_server, client, tmp_path
):
    shared = SharedModels(redis_server.url, ModelStore(tmp_path / "store"))
    old = put_unnamed(client, b"old", range(3))
    in_progress = put_unnamed(client, b"in progress", range(2))
    time.sleep(3.5)  # past the grace and the second OBJECT IDLETIME may add
    young = put_unnamed(client, b"young", range(2))
    put_unnamed(client, b"in progress", range(2, 3))  # its share has just written a chunk

    listed = shared.collect({}, grace_seconds=2, dry_run=True)
    assert listed == [f"blob:{old}"]
    shown = Plan(removed_shared=listed).to_dict(dry_run=True)["removed_from_redis"]
    assert shown == [f"blob:{old[:12]}"]  # as POST /admin/gc answers it
    assert len(blob_keys(client)) == 8  # a dry run removes nothing

    assert shared.collect({}, grace_seconds=2, dry_run=False) == [f"blob:{old}"]
    left = {key.decode().split(":")[2] for key in blob_keys(client)}
    assert left == {in_progress, young}
    assert shared.collect({}, grace_seconds=3600, dry_run=False) == []
    assert len(blob_keys(client)) == 5
    shared.close()


def test_gc_never_removes_chunks_a_manifest_names(redis_server, client, tmp_path, big_model):
    store = ModelStore(tmp_path / "store")
    shared = SharedModels(redis_server.url, store)
    kept = store.keep(big_model)
    shared.share(kept)
    named = blob_keys(client)
    orphan = put_unnamed(client, b"orphan", range(2))
    time.sleep(1.5)
    removed = shared.collect({kept.version: "B"}, grace_seconds=0, dry_run=False)
    assert removed == [f"blob:{orphan}"]
    assert blob_keys(client) == named
    assert client.exists(manifest_key(kept.version))
    shared.close()


@pytest.fixture
def big_onnx(tmp_path: Path) -> Path:
    """vB, made several chunks long by a doc string: a valid model the server loads."""
    model = onnx.load(REPO / "models" / "vB.onnx")
    model.doc_string = os.urandom(CHUNKS * CHUNK_BYTES // 2).hex()[: CHUNKS * CHUNK_BYTES - 5000]
    path = tmp_path / "big.onnx"
    onnx.save(model, path)
    return path


def test_a_load_refused_by_a_full_redis_answers_503_and_leaves_no_chunk(
    redis_server, client, tmp_path, big_onnx
):
    root = tmp_path / "pod"
    server = start_server(base_env(**pushed_only_env(root) | {"STATE_URL": redis_server.url}))
    try:
        shutil.copy(big_onnx, Path(server.env["MODEL_DIR"]) / "big.onnx")
        with server.admin() as admin:
            before = admin.get("/admin/config").json()
            fill_to_maxmemory(client, room=4 * CHUNK_BYTES)
            client.config_resetstat()
            r = admin.post("/admin/models/B", json={"path": "big.onnx"})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "state_unavailable", r.text
            assert admin.get("/admin/config").json()["models"] == before["models"]
        # Refused part way: Redis took some chunks before it refused one.
        taken = client.info("commandstats")["cmdstat_set"]
        assert taken["calls"] >= 1 and taken["rejected_calls"] >= 1, taken
        assert blob_keys(client) == []
        assert list(client.scan_iter(match="edgeserve:model:*")) == []
    finally:
        stop_server(server)
