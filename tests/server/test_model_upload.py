"""POST /admin/uploads (issue 23): a model pushed from the operator's machine is streamed,
checked against the stated sha256, kept once by version, and loadable by that version; a
refused or cut-off upload leaves nothing in the store and changes nothing live."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeserve.inference.model import file_model_version
from tests.support.folders import fill_up, read_only, tiny_filesystem
from tests.support.images import image_b64
from tests.support.metrics import metric_sum
from tests.support.models import save_colour_model
from tests.support.server import ADMIN_TOKEN, REPO, Server, pushed_only_env, running_server
from tests.support.waiting import wait_until

MODEL = REPO / "models" / "vB.onnx"
MODEL_BYTES = MODEL.read_bytes()
SHA256 = hashlib.sha256(MODEL_BYTES).hexdigest()


def upload_query(name: str = "new.onnx", sha256: str = SHA256, sidecar: bytes = b"") -> dict:
    return {"name": name, "sha256": sha256, "sidecar_bytes": str(len(sidecar))}


def push(server: Server, body: bytes = MODEL_BYTES, **query):
    sidecar = query.get("sidecar", b"")
    with server.admin() as admin:
        return admin.post(
            "/admin/uploads",
            params=upload_query(**query),
            content=sidecar + body,
            headers={"Content-Type": "application/octet-stream"},
        )


def stored(server: Server) -> set[str]:
    """Every entry of the model store, one level down (version folders and their files)."""
    folder = Path(server.env["STATE_PATH"]).parent / "models"
    return {str(p.relative_to(folder)) for p in folder.glob("*/*")} | {
        p.name for p in folder.glob(".*")
    }


def raw_request_head(server: Server, length: int, sha256: str = SHA256) -> bytes:
    port = server.url.rsplit(":", 1)[1]
    return (
        f"POST /admin/uploads?name=cut.onnx&sha256={sha256}&sidecar_bytes=0 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """Only A at start, from a MODEL_DIR that holds nothing: every other model is pushed."""
    env = {**pushed_only_env(tmp_path_factory.mktemp("upload")), "MODEL_MAX_BYTES": "4096"}
    with running_server(**env) as server:
        yield server


def test_a_pushed_model_is_kept_by_version_and_serves_once_loaded_by_it(server):
    r = push(server)
    assert r.status_code in (200, 201), r.text
    pushed = r.json()
    assert pushed["full_version"] == file_model_version(MODEL), pushed
    assert pushed["version"] == pushed["full_version"][:12]
    with server.admin() as admin, server.client() as client:
        r = admin.post("/admin/models/B", json={"version": pushed["version"]})
        assert r.status_code == 200, r.text
        assert r.json()["models"]["B"]["version"] == pushed["version"], r.text
        admin.post("/admin/config", json={"ab_weight_a": 0, "ab_weight_b": 1}).raise_for_status()
        answer = client.post("/v1/infer", json={"image_b64": image_b64((255, 0, 0))})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"]["version"] == pushed["version"], answer.text
        admin.post("/admin/config", json={"ab_weight_a": 1, "ab_weight_b": 0}).raise_for_status()


def test_the_same_model_pushed_twice_is_stored_once(server):
    push(server, name="twice.onnx").raise_for_status()
    before = stored(server)
    again = push(server, name="twice.onnx")
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False, again.text
    assert stored(server) == before


def test_the_sidecar_is_part_of_the_pushed_version(server):
    sidecar = json.dumps({"interpolation": "nearest"}).encode()
    r = push(server, name="described.onnx", sidecar=sidecar)
    assert r.status_code == 201, r.text
    plain = push(server, name="described.onnx").json()
    assert r.json()["full_version"] != plain["full_version"], r.text
    kept = Path(server.env["STATE_PATH"]).parent / "models" / r.json()["full_version"]
    assert (kept / "described.json").read_bytes() == sidecar


def test_a_wrong_stated_sha256_is_a_422_and_nothing_is_stored(server):
    before = stored(server)
    r = push(server, sha256=hashlib.sha256(b"other bytes").hexdigest(), name="wrong.onnx")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "model_hash_mismatch", r.text
    assert stored(server) == before


def test_a_model_over_model_max_bytes_is_a_413_before_its_body_is_read(server):
    with connect(server) as sock:
        sock.sendall(raw_request_head(server, 4097))  # the head only: no body follows
        answer = sock.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "payload_too_large" in answer and "MODEL_MAX_BYTES" in answer, answer


def test_a_streamed_model_growing_over_model_max_bytes_is_a_413_and_nothing_is_stored(server):
    before = stored(server)

    def chunks() -> Iterator[bytes]:  # no Content-Length: only counting shows the size
        for _ in range(5):
            yield b"\0" * 1024

    with server.admin() as admin:
        r = admin.post(
            "/admin/uploads",
            params=upload_query(name="big.onnx"),
            content=chunks(),
            headers={"Content-Type": "application/octet-stream"},
        )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large", r.text
    assert stored(server) == before


def body_bytes_sum(server: Server, route: str) -> float:
    return metric_sum(server, "edgeserve_request_body_bytes_sum", route=route)


def test_a_streamed_upload_records_the_bytes_it_received(server):
    before = body_bytes_sum(server, "/admin/uploads")
    r = push(server, sidecar=b'{"pad_value": 7}')
    assert r.status_code in (200, 201), r.text
    received = body_bytes_sum(server, "/admin/uploads") - before
    sent = len(b'{"pad_value": 7}') + len(MODEL_BYTES)
    assert received == sent, f"the metric grew by {received} for a {sent}-byte upload"


def test_an_upload_refused_part_way_records_the_bytes_it_read(server):
    before = body_bytes_sum(server, "/admin/uploads")
    port = server.url.rsplit(":", 1)[1]
    head = (
        f"POST /admin/uploads?name=big.onnx&sha256={SHA256} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
        "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    over = 4097  # MODEL_MAX_BYTES + 1, in one chunk: refused once all of it is read
    with connect(server) as sock:
        sock.sendall(head + f"{over:x}\r\n".encode() + b"\0" * over + b"\r\n")
        answer = sock.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    read = body_bytes_sum(server, "/admin/uploads") - before
    assert read == over, f"the metric grew by {read} for an upload refused after {over} bytes"


def test_an_infer_body_is_still_recorded_at_its_length(server):
    before = body_bytes_sum(server, "/v1/infer")
    body = json.dumps({"image_b64": image_b64((0, 0, 255))}).encode()
    with server.client() as client:
        r = client.post("/v1/infer", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    recorded = body_bytes_sum(server, "/v1/infer") - before
    assert recorded == len(body), f"the metric grew by {recorded} for a {len(body)}-byte body"


def test_an_upload_cut_off_halfway_leaves_nothing_stored_and_the_server_serving(server):
    before = stored(server)
    store = Path(server.env["STATE_PATH"]).parent / "models"
    half = len(MODEL_BYTES) // 2
    with connect(server) as sock:
        sock.sendall(raw_request_head(server, len(MODEL_BYTES)) + MODEL_BYTES[:half])
        wait_until(
            "the first half to be staged",
            lambda: [p.stat().st_size for p in store.glob(".incoming-*/cut.onnx")],
            lambda sizes: sizes == [half],
        )
    wait_until("the staging folder to go", lambda: list(store.glob(".incoming-*")), lambda x: not x)
    assert stored(server) == before
    with server.client() as client:
        assert client.get("/ready").status_code == 200
        r = client.post("/v1/infer", json={"image_b64": image_b64((0, 0, 255))})
        assert r.status_code == 200, r.text


def test_loading_a_version_this_host_does_not_hold_is_a_422_model_missing(server):
    with server.admin() as admin:
        r = admin.post("/admin/models/B", json={"version": "0123456789ab"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "model_missing", r.text


@pytest.mark.parametrize(
    "query",
    [
        {"name": "../up.onnx", "sha256": SHA256},
        {"name": "model.bin", "sha256": SHA256},
        {"name": "new.onnx", "sha256": "abc"},
        {"name": "new.onnx"},
        {"name": "new.onnx", "sha256": SHA256, "sidecar_bytes": "-1"},
        {"name": "new.onnx", "sha256": SHA256, "colour": "red"},
    ],
    ids=["path_in_name", "not_onnx", "short_sha256", "no_sha256", "bad_sidecar_bytes", "unknown"],
)
def test_a_bad_upload_query_is_a_422_naming_the_parameter(server, query):
    with server.admin() as admin:
        r = admin.post("/admin/uploads", params=query, content=MODEL_BYTES)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in ("invalid_field", "missing_field", "unknown_field"), r.text


def test_an_upload_needs_the_admin_token(server):
    with server.client() as client:
        r = client.post("/admin/uploads", params=upload_query(), content=MODEL_BYTES)
    assert r.status_code == 401, r.text


def test_a_full_store_is_a_507_and_leaves_nothing_partial(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    big = save_colour_model(tmp_path / "big.onnx", work=1)
    env = {
        "MODEL_VA_PATH": str(REPO / "models" / "vA.onnx"),
        "MODEL_VB_PATH": "",
        "STATE_PATH": str(state / "state.json"),
        "WARMUP_RUNS": "0",
    }
    with tiny_filesystem(state, size_kib=512), running_server(**env) as server:
        fill_up(state, leave_kib=16)
        body = big.read_bytes()
        r = push(server, body, name="big.onnx", sha256=hashlib.sha256(body).hexdigest())
        assert r.status_code == 507, r.text
        assert r.json()["error"]["code"] == "insufficient_storage", r.text
        assert not list((state / "models").glob(".incoming-*"))
        assert not list((state / "models").glob("*/big.onnx"))
        with server.client() as client:
            assert client.get("/ready").status_code == 200


def test_a_store_that_cannot_be_written_is_a_503_and_the_server_keeps_serving(server):
    store = Path(server.env["STATE_PATH"]).parent / "models"
    with read_only(store):
        r = push(server, name="locked.onnx")
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "state_unavailable", r.text
    assert not list(store.glob("*/locked.onnx"))
    with server.client() as client:
        assert client.get("/ready").status_code == 200


def test_a_model_pushed_to_one_worker_is_served_by_every_worker(tmp_path):
    with running_server(**pushed_only_env(tmp_path) | {"WORKERS": "2"}) as server:
        version = push(server).json()["version"]
        with server.admin() as admin:
            r = admin.post("/admin/models/B", json={"version": version})
        assert r.status_code == 200, r.text

        def b_on_fresh_connections() -> set[str | None]:
            seen = set()
            for _ in range(10):  # a new connection each: any worker may answer
                with server.admin() as admin:
                    b = admin.get("/admin/config").json()["models"].get("B")
                    seen.add(b["version"] if b else None)
            return seen

        wait_until("every worker to serve B", b_on_fresh_connections, {version}.__eq__, timeout=5)
