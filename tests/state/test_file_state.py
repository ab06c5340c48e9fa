"""The file backend with real servers: bad documents, failed writes and changed model files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from edgeserve.inference.model import file_model_version, file_sha256
from tests.support.folders import read_only
from tests.support.images import ORANGE, image_b64
from tests.support.metrics import metric_sum
from tests.support.server import ADMIN_TOKEN, REPO, Server, running_server
from tests.support.waiting import wait_until

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VB_VERSION = file_model_version(REPO / "models" / "vB.onnx")
SYNC_ERRORS = "edgeserve_state_sync_errors_total"


def valid_document(**changes: Any) -> dict[str, Any]:
    models = {
        slot: {"path": str(REPO / "models" / f"v{slot}.onnx"), "version": file_model_version(path)}
        for slot, path in (("A", REPO / "models" / "vA.onnx"), ("B", REPO / "models" / "vB.onnx"))
    }
    document = {
        "ab_weight_a": 0.5,
        "ab_weight_b": 0.5,
        "shadow_enabled": False,
        "canary_enabled": False,
        "sticky_cookie": True,
        "models": models,
        "generation": 40,
        "last_rollback": None,
        "quarantine": None,
    }
    return {**document, **changes}


def with_nan_weight(document: dict[str, Any]) -> str:
    return json.dumps({**document, "ab_weight_b": float("nan")})  # Python writes NaN


# The state files that crash-looped or fooled the server before (issue #10), as text, and a
# word the logged reason must contain.
MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], str], str]] = {
    "models_is_an_array": (lambda d: json.dumps({**d, "models": []}), "models"),
    "models_is_null": (lambda d: json.dumps({**d, "models": None}), "models"),
    "models_is_a_string": (lambda d: json.dumps({**d, "models": "vA.onnx"}), "models"),
    "both_weights_zero": (lambda d: json.dumps({**d, "ab_weight_a": 0, "ab_weight_b": 0}), "0"),
    "generation_1e30": (lambda d: json.dumps({**d, "generation": 1e30}), "generation"),
    "shadow_enabled_is_a_string": (
        lambda d: json.dumps({**d, "shadow_enabled": "false"}),
        "shadow_enabled",
    ),
    "nan_weight": (with_nan_weight, "ab_weight_b"),
    "not_json": (lambda d: '{"generation": 3,', "JSON"),
}


def logged(server: Server, event: str) -> list[dict[str, Any]]:
    lines = (line for line in server.output().splitlines() if line.startswith("{"))
    return [entry for entry in map(json.loads, lines) if entry.get("event") == event]


def configs_seen(server: Server, requests: int = 16) -> set[tuple[int, float]]:
    """(generation, weight of B) as answered over new connections, spread over the workers."""
    seen = set()
    for _ in range(requests):
        headers = {**AUTH, "Connection": "close"}
        config = httpx.get(server.url + "/admin/config", headers=headers, timeout=10).json()
        seen.add((config["generation"], config["ab_weight_b"]))
    return seen


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_state_file_is_moved_aside_at_start_and_the_environment_used(tmp_path, case):
    make, word = MALFORMED[case]
    state_path = tmp_path / "state.json"
    state_path.write_text(make(valid_document()))
    original = state_path.read_text()
    with running_server(STATE_PATH=str(state_path), AB_WEIGHT_B="0.1") as server:
        with server.admin() as admin:
            config = admin.get("/admin/config").json()
        (invalid,) = logged(server, "state_invalid")
    assert (config["ab_weight_b"], config["generation"], config["in_sync"]) == (0.1, 1, True)
    assert word in invalid["reason"], invalid
    (aside,) = tmp_path.glob("state.json.corrupt-*")
    assert aside.read_text() == original
    assert json.loads(state_path.read_text())["generation"] == 1


def test_a_saved_version_that_is_not_its_files_is_moved_aside_at_start(tmp_path):
    document = valid_document()
    document["models"]["B"]["version"] = "0" * 64
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(document))
    with running_server(STATE_PATH=str(state_path)) as server:
        (invalid,) = logged(server, "state_invalid")
        with server.admin() as admin:
            assert admin.get("/admin/config").json()["models"]["B"]["version"] == VB_VERSION[:12]
    assert "changed since it was saved" in invalid["reason"], invalid


def test_temp_files_a_crashed_writer_left_are_removed_at_start(tmp_path):
    stale = tmp_path / ".state.json.4242.tmp"
    stale.write_text('{"half": ')
    with running_server(STATE_PATH=str(tmp_path / "state.json")):
        assert not stale.exists()


def test_workers_keep_their_last_good_state_through_malformed_files_and_agree_after(tmp_path):
    state_path = tmp_path / "state.json"
    with running_server(STATE_PATH=str(state_path), WORKERS="2") as server:
        with server.admin() as admin:
            assert admin.post("/admin/config", json={"ab_weight_b": 0.25}).status_code == 200
        wait_until(
            "both workers to serve generation 2",
            lambda: configs_seen(server),
            lambda seen: seen == {(2, 0.25)},
            timeout=15,
        )
        good = json.loads(state_path.read_text())
        for case, (make, _) in MALFORMED.items():
            errors = metric_sum(server, SYNC_ERRORS)
            state_path.write_text(make(good))
            wait_until(
                f"both workers to count the {case} file as a sync error",
                lambda: metric_sum(server, SYNC_ERRORS),
                lambda now, errors=errors: now >= errors + 2,
                timeout=15,
            )
            assert configs_seen(server) == {(2, 0.25)}, case
            with server.client() as client:
                r = client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)})
            assert r.status_code == 200, (case, r.text)
        state_path.write_text(json.dumps({**good, "generation": 9, "ab_weight_b": 0.75}))
        wait_until(
            "both workers to serve generation 9",
            lambda: configs_seen(server),
            lambda seen: seen == {(9, 0.75)},
            timeout=15,
        )
        assert len(logged(server, "state_sync_recovered")) >= 2


def test_a_read_only_state_folder_starts_with_read_only_admin(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    with read_only(folder), running_server(STATE_PATH=str(folder / "state.json")) as server:
        with server.admin() as admin:
            r = admin.post("/admin/config", json={"ab_weight_b": 0.5})
            config = admin.get("/admin/config").json()
        with server.client() as client:
            assert client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)}).is_success
    assert r.status_code == 503 and r.json()["error"]["code"] == "state_unavailable", r.text
    assert (config["ab_weight_b"], config["generation"], config["state_store"]) == (0.0, 1, "file")


def served(server: Server) -> tuple[str, str]:
    """Which variant and model version answer an orange image."""
    with server.client() as client:
        answer = client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)}).json()
    return answer["variant"], answer["model"]["version"]


ADMIN_WRITES = {
    "config": ("/admin/config", {"ab_weight_b": 0.5}),
    "promote": ("/admin/promote", None),
    "hot_load": ("/admin/models/B", {"path": "vA.onnx"}),
}


@pytest.mark.parametrize("write", ADMIN_WRITES)
def test_a_change_that_cannot_be_persisted_answers_503_and_changes_nothing_live(
    tmp_path, model_dir, write
):
    folder = tmp_path / "state"
    env = {"MODEL_VA_PATH": str(model_dir / "vA.onnx"), "MODEL_VB_PATH": str(model_dir / "vB.onnx")}
    with running_server(STATE_PATH=str(folder / "state.json"), WORKERS="2", **env) as server:
        with server.admin() as admin:
            before = admin.get("/admin/config").json()
            with read_only(folder, or_locked_out=True):
                path, body = ADMIN_WRITES[write]
                r = admin.post(path, json=body)
                after = [
                    httpx.get(
                        server.url + "/admin/config", headers={**AUTH, "Connection": "close"}
                    ).json()
                    for _ in range(8)
                ]
                assert served(server) == ("A", before["models"]["A"]["version"])
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "state_unavailable" and "\n" not in r.text, r.text
    assert all(config == before for config in after), after


def test_promote_moves_the_bytes_b_served_even_after_its_file_was_replaced(model_dir):
    env = {"MODEL_VA_PATH": str(model_dir / "vA.onnx"), "MODEL_VB_PATH": str(model_dir / "vB.onnx")}
    with running_server(**env) as server, server.admin() as admin:
        shutil.copy(model_dir / "vA.onnx", model_dir / "vB.onnx")  # overwritten in place
        r = admin.post("/admin/promote")
        assert r.status_code == 200, r.text
        assert r.json()["new_a"]["version"] == VB_VERSION[:12]
        assert served(server) == ("A", VB_VERSION[:12])


def test_a_worker_that_cannot_load_a_generations_model_keeps_serving_and_says_so(tmp_path):
    state_path = tmp_path / "state.json"
    with running_server(STATE_PATH=str(state_path)) as server, server.admin() as admin:
        good = json.loads(state_path.read_text())
        missing = {"path": str(tmp_path / "gone" / "vC.onnx"), "version": "d" * 64}
        broken = {**good, "generation": 5, "models": {**good["models"], "B": missing}}
        state_path.write_text(json.dumps(broken))
        config = wait_until(
            "the config to reach generation 5",
            lambda: admin.get("/admin/config").json(),
            lambda c: c["generation"] == 5,
            timeout=15,
        )
        assert config["in_sync"] is False
        assert config["models"]["B"]["version"] == VB_VERSION[:12]
        assert metric_sum(server, "edgeserve_state_apply_failures_total") == 1
        assert metric_sum(server, "edgeserve_state_in_sync") == 0
        state_path.write_text(json.dumps({**good, "generation": 6}))
        wait_until(
            "the config to be in sync again",
            lambda: admin.get("/admin/config").json(),
            lambda c: c["in_sync"],
            timeout=15,
        )
        assert metric_sum(server, "edgeserve_state_in_sync") == 1


def test_a_state_file_from_before_content_addressing_keeps_its_rollout(tmp_path, model_dir):
    legacy = valid_document(ab_weight_b=0.3, generation=5)
    legacy["models"] = {
        slot: {"path": str(model_dir / name), "version": file_sha256(model_dir / name)[:12]}
        for slot, name in (("A", "vB.onnx"), ("B", "vA.onnx"))
    }
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(legacy))
    with running_server(STATE_PATH=str(state_path)) as server, server.admin() as admin:
        config = admin.get("/admin/config").json()
        assert logged(server, "state_upgraded") and not logged(server, "state_invalid")
    assert (config["generation"], config["ab_weight_b"], config["models"]["A"]["name"]) == (
        5,
        0.3,
        "vB",
    )
    assert json.loads(state_path.read_text())["models"]["A"]["version"] == VB_VERSION


def test_a_state_folder_that_cannot_be_created_starts_with_read_only_admin(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder of STATE_PATH should be: stops root too")
    with running_server(STATE_PATH=str(blocker / "state" / "state.json")) as server:
        with server.admin() as admin:
            r = admin.post("/admin/config", json={"ab_weight_b": 0.5})
            config = admin.get("/admin/config").json()
        assert logged(server, "state_folder_unavailable")
    assert r.status_code == 503 and r.json()["error"]["code"] == "state_unavailable", r.text
    assert (config["ab_weight_b"], config["generation"]) == (0.0, 1)
