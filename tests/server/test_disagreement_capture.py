"""CAPTURE_DISAGREEMENTS on a real server: the inputs A and B disagree on, kept on disk and
read through the admin API (the store's own bounds: tests/state/test_disagreement_store.py)."""

from __future__ import annotations

import base64

from edgeserve.inference.model import file_version
from tests.support.images import ORANGE, image_bytes
from tests.support.metrics import metric_sum
from tests.support.server import REPO, Server, running_server
from tests.support.waiting import wait_until

RED = (255, 0, 0)
PNG = {"Content-Type": "image/png"}


def send(server: Server, colour: tuple[int, int, int], trace_id: str) -> None:
    with server.client() as client:
        r = client.post(
            "/v1/infer", content=image_bytes(colour), headers={**PNG, "X-Request-ID": trace_id}
        )
    assert r.status_code == 200 and r.headers["X-Edgeserve-Variant"] == "A", r.text


def listed(server: Server) -> dict:
    with server.admin() as admin:
        r = admin.get("/admin/disagreements")
    assert r.status_code == 200, r.text
    return r.json()


def captured(server: Server, count: int) -> list[dict]:
    """Wait until `count` disagreements were written (the writes come after the answers)."""
    wait_until(
        f"{count} captures",
        lambda: metric_sum(server, "edgeserve_disagreement_captures_total", outcome="kept"),
        lambda kept: kept == count,
        context=lambda: server.output()[-2000:],
    )
    return listed(server)["disagreements"]


def capturing(tmp_path, **env: str) -> dict[str, str]:
    return {"SHADOW_ENABLED": "true", "STATE_PATH": str(tmp_path / "state.json"), **env}


def test_a_disagreement_is_listed_with_both_answers_versions_trace_id_and_time(tmp_path):
    with running_server(**capturing(tmp_path, CAPTURE_DISAGREEMENTS="5")) as server:
        send(server, RED, "agreed-1")  # A and B agree on red: nothing to keep
        send(server, ORANGE, "orange-1")
        (record,) = captured(server, 1)
    a, b = (file_version(REPO / "models" / name) for name in ("vA.onnx", "vB.onnx"))
    assert (record["trace_id"], record["a"]["version"], record["b"]["version"]) == (
        "orange-1",
        a,
        b,
    ), record
    assert record["a"]["predictions"][0]["label"] != record["b"]["predictions"][0]["label"]
    assert record["b"]["predictions"][0]["label"] == "orange", record
    assert record["time"].endswith("Z") and record["image"]["media_type"] == "image/png"


def test_a_shown_disagreement_carries_the_image_bytes_as_sent(tmp_path):
    with running_server(**capturing(tmp_path, CAPTURE_DISAGREEMENTS="5")) as server:
        send(server, ORANGE, "orange-1")
        (record,) = captured(server, 1)
        with server.admin() as admin:
            shown = admin.get(f"/admin/disagreements/{record['id']}")
            image = admin.get(f"/admin/disagreements/{record['id']}/image")
    assert shown.status_code == 200, shown.text
    assert base64.b64decode(shown.json()["image_b64"]) == image_bytes(ORANGE)
    assert shown.json()["trace_id"] == "orange-1"
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == image_bytes(ORANGE)


def test_captured_disagreements_survive_a_restart(tmp_path):
    env = capturing(tmp_path, CAPTURE_DISAGREEMENTS="5")
    with running_server(**env) as server:
        send(server, ORANGE, "before-restart")
        (record,) = captured(server, 1)
    with running_server(**env) as again:
        assert [r["id"] for r in listed(again)["disagreements"]] == [record["id"]]
        with again.admin() as admin:
            image = admin.get(f"/admin/disagreements/{record['id']}/image")
    assert image.content == image_bytes(ORANGE)


def test_the_server_keeps_only_the_last_n(tmp_path):
    with running_server(**capturing(tmp_path, CAPTURE_DISAGREEMENTS="2")) as server:
        for n in range(4):
            send(server, ORANGE, f"orange-{n}")
        records = captured(server, 4)
    assert len(records) == 2, records
    assert {r["trace_id"] for r in records} <= {f"orange-{n}" for n in range(4)}


def test_capture_is_off_by_default_and_keeps_nothing(tmp_path):
    with running_server(**capturing(tmp_path)) as server:
        send(server, ORANGE, "orange-1")
        wait_until(
            "the disagreement to be compared",
            lambda: metric_sum(server, "edgeserve_shadow_comparisons_total", result="disagree"),
        )
        answer = listed(server)
        offered = metric_sum(server, "edgeserve_disagreement_captures_total")
    assert answer["capture"]["enabled"] is False and answer["disagreements"] == [], answer
    assert offered == 0
    assert not (tmp_path / "disagreements").exists()


def test_an_unknown_disagreement_is_404_disagreement_not_found(tmp_path):
    with running_server(**capturing(tmp_path, CAPTURE_DISAGREEMENTS="5")) as server:
        with server.admin() as admin:
            for path in ("20260101T000000-000000-00000000", "20260101T000000-000000-0/image"):
                r = admin.get(f"/admin/disagreements/{path}")
                assert r.status_code == 404, r.text
                assert r.json()["error"]["code"] == "disagreement_not_found", r.text


def test_the_disagreements_need_the_admin_token(tmp_path):
    with running_server(**capturing(tmp_path, CAPTURE_DISAGREEMENTS="5")) as server:
        with server.client() as client:
            r = client.get("/admin/disagreements")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text


def test_a_capture_folder_that_cannot_be_written_never_fails_a_request(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    env = capturing(
        tmp_path, CAPTURE_DISAGREEMENTS="5", CAPTURE_DISAGREEMENTS_DIR=str(blocked / "captures")
    )
    with running_server(**env) as server:
        for n in range(3):
            send(server, ORANGE, f"orange-{n}")  # each answers 200
        wait_until(
            "3 failed captures",
            lambda: metric_sum(server, "edgeserve_disagreement_captures_total", outcome="failed"),
            lambda failed: failed == 3,
        )
        logged = server.output().count('"event": "disagreement_capture_failed"')
    assert logged == 1, "a failing folder is logged once, not once per capture"


def test_two_workers_capture_into_one_folder_within_the_bounds(tmp_path):
    env = capturing(tmp_path, CAPTURE_DISAGREEMENTS="3", WORKERS="2")
    with running_server(**env) as server:
        for n in range(8):
            send(server, ORANGE, f"orange-{n}")  # a connection each: either worker serves it
        records = captured(server, 8)
    assert len(records) == 3, records
    files = sorted(path.name for path in (tmp_path / "disagreements").iterdir())
    assert files == sorted(
        [".lock"] + [f"{r['id']}.{ext}" for r in records for ext in ("json", "png")]
    )
