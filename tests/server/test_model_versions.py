"""A model version is the identity of what answers: the bytes and the description beside them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.images import image_b64
from tests.support.server import REPO, running_server

RED = {"image_b64": image_b64((255, 0, 0))}
LABELS = ["red", "green", "blue", "yellow", "cyan", "magenta", "white", "black", "orange"]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, folder / name)
    shutil.copy(REPO / "models" / "vB.onnx", folder / "cand.onnx")
    return folder


def env_for(models: Path, state_path: Path, *, b: str) -> dict[str, str]:
    return {
        "MODEL_VA_PATH": str(models / "vA.onnx"),
        "MODEL_VB_PATH": str(models / b) if b else "",
        "STATE_PATH": str(state_path),
        "WARMUP_RUNS": "0",
    }


def answer_of_b(server) -> tuple[str, str]:
    with server.client() as client:
        r = client.post("/v1/infer", json=RED)
    assert r.status_code == 200 and r.json()["variant"] == "B", r.text
    return r.json()["model"]["version"], r.json()["predictions"][0]["label"]


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_new_sidecar_for_the_same_bytes_is_a_new_version_and_the_old_copy_is_unchanged(
    models, tmp_path
):
    state_path = tmp_path / "state" / "state.json"
    env = env_for(models, state_path, b="")
    with running_server(**env) as server:
        with server.admin() as admin:
            first = admin.post("/admin/models/B", json={"path": "cand.onnx"}).json()["loaded"]
            admin.post("/admin/config", json={"ab_weight_a": 0, "ab_weight_b": 1})
        (kept_first,) = (state_path.parent / "models").glob(f"{first['version']}*")
        before = files_in(kept_first)
        sidecar = {"labels": [label.upper() for label in LABELS]}
        (models / "cand.json").write_text(json.dumps(sidecar))
        with server.admin() as admin:
            r = admin.post(
                "/admin/models/B", json={"path": "cand.onnx", "allow_label_change": True}
            )
        second = r.json()["loaded"]
        assert r.status_code == 200, r.text
        assert second["version"] != first["version"], (first, second)
        served = answer_of_b(server)
        assert served == (second["version"], "RED"), served
        assert files_in(kept_first) == before and "cand.json" not in before, before.keys()
    with running_server(**env) as server:
        assert answer_of_b(server) == served


def test_loading_the_version_a_slot_serves_again_is_a_no_op_that_says_so(models, tmp_path):
    env = env_for(models, tmp_path / "state" / "state.json", b="vB.onnx")
    with running_server(**env) as server:
        with server.admin() as admin:
            generation = admin.get("/admin/config").json()["generation"]
            r = admin.post("/admin/models/B", json={"path": "vB.onnx"})
    assert r.status_code == 200, r.text
    assert (r.json()["loaded"]["changed"], r.json()["generation"]) == (False, generation), r.text
