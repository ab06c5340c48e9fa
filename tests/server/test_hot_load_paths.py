"""A hot load that cannot work is a 422 that says why, never a 500; the old model keeps serving."""

from __future__ import annotations

import shutil

import pytest

from tests.support.images import image_b64
from tests.support.models import save_more_classes_than_labels
from tests.support.server import REPO, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, folder / name)
    (folder / "loop-a.onnx").symlink_to(folder / "loop-b.onnx")
    (folder / "loop-b.onnx").symlink_to(folder / "loop-a.onnx")
    save_more_classes_than_labels(folder / "nine-classes.onnx")
    env = {"MODEL_VA_PATH": str(folder / "vA.onnx"), "MODEL_VB_PATH": str(folder / "vB.onnx")}
    with running_server(**env, WARMUP_RUNS="0") as server:
        yield server


@pytest.mark.parametrize(
    "path",
    ["loop-a.onnx", "bad\u0000name.onnx", "x" * 300 + ".onnx", "a/" * 600 + "m.onnx"],
    ids=["symlink_loop", "nul_byte", "long_name", "long_path"],
)
def test_an_unresolvable_model_path_is_a_422(server, path):
    with server.admin() as admin:
        r = admin.post("/admin/models/B", json={"path": path})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "model_load_failed", r.text


def test_a_model_with_more_classes_than_labels_fails_validation_with_422(server):
    with server.admin() as admin, server.client() as client:
        r = admin.post("/admin/models/B", json={"path": "nine-classes.onnx"})
        assert r.status_code == 422, r.text
        assert "outputs 9 classes" in r.json()["error"]["message"], r.text
        assert admin.get("/admin/config").json()["models"]["B"]["name"] == "vB"
        assert client.post("/v1/infer", json={"image_b64": image_b64((255, 0, 0))}).is_success
