"""A model that passes warm-up but fails on real images never serves: not in A, B or promoted."""

from __future__ import annotations

import shutil

from tests.support.images import image_b64
from tests.support.models import save_fails_on_real_images
from tests.support.server import REPO, running_server

RED = {"image_b64": image_b64((255, 0, 0))}


def demo_models_and_broken(tmp_path, b: str = "vB.onnx") -> dict[str, str]:
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, tmp_path / name)
    save_fails_on_real_images(tmp_path / "broken.onnx")
    return {
        "MODEL_VA_PATH": str(tmp_path / "vA.onnx"),
        "MODEL_VB_PATH": str(tmp_path / b),
        "MODEL_DIR": str(tmp_path),
    }


def serve_some_real_images(server) -> None:
    with server.client() as client:
        for colour in [(255, 0, 0), (0, 0, 255), (20, 200, 20)]:
            r = client.post("/v1/infer", json={"image_b64": image_b64(colour)})
            assert r.status_code == 200, r.text


def test_loading_a_model_that_fails_on_real_images_is_refused_for_both_slots(tmp_path):
    with running_server(**demo_models_and_broken(tmp_path)) as server:
        serve_some_real_images(server)
        with server.admin() as admin:
            before = admin.get("/admin/config").json()["models"]
            for slot in ("A", "B"):
                r = admin.post(f"/admin/models/{slot}", json={"path": "broken.onnx"})
                assert r.status_code == 422, r.text
                assert r.json()["error"]["code"] == "model_verification_failed"
                assert "recent real inputs" in r.json()["error"]["message"]
            assert admin.get("/admin/config").json()["models"] == before
        with server.client() as client:
            for forced in ("never", "always"):
                served = client.post("/v1/infer", json=RED, headers={"X-Canary": forced})
                assert served.status_code == 200, served.text


def test_promoting_a_b_that_fails_on_real_images_is_refused(tmp_path):
    env = demo_models_and_broken(tmp_path, b="broken.onnx")
    with running_server(**env) as server:  # at start-up nothing has been served to check on
        serve_some_real_images(server)
        with server.admin() as admin:
            r = admin.post("/admin/promote")
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == "model_verification_failed"
            assert admin.get("/admin/config").json()["models"]["A"]["name"] == "vA"
        with server.client() as client:
            assert client.post("/v1/infer", json=RED).json()["model"]["name"] == "vA"


def test_a_good_model_still_loads_after_real_traffic(tmp_path):
    with running_server(**demo_models_and_broken(tmp_path)) as server:
        serve_some_real_images(server)
        with server.admin() as admin:
            r = admin.post("/admin/models/B", json={"path": "vA.onnx"})
        assert r.status_code == 200, r.text
