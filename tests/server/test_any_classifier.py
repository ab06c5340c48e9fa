"""Any ONNX image classifier works: here an NHWC, fixed-size model that outputs probabilities."""

from __future__ import annotations

import json

import pytest

from tests.support.images import image_b64
from tests.support.models import save_nhwc_probabilities
from tests.support.server import running_server


@pytest.fixture(scope="module")
def nhwc_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nhwc")
    path = save_nhwc_probabilities(folder / "nhwc.onnx")
    with running_server(MODEL_VA_PATH=str(path), MODEL_VB_PATH="") as server:
        yield server


@pytest.mark.parametrize(("colour", "label"), [((255, 0, 0), "red"), ((0, 0, 255), "blue")])
def test_nhwc_probability_model_is_served(nhwc_server, colour, label):
    with nhwc_server.client() as client:
        r = client.post("/v1/infer", json={"image_b64": image_b64(colour, "JPEG")})
    assert r.status_code == 200, r.text
    assert r.json()["model"]["name"] == "nhwc"
    assert r.json()["predictions"][0]["label"] == label


def test_fixed_size_model_refuses_another_img_size(nhwc_server):
    with nhwc_server.client() as client:
        r = client.post("/v1/infer", json={"image_b64": image_b64((255, 0, 0)), "img_size": 64})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_img_size"


def test_sidecar_json_overrides_the_labels(tmp_path):
    path = save_nhwc_probabilities(tmp_path / "renamed.onnx")
    labels = ["rouge", "vert", "bleu", "jaune", "cyan", "magenta", "blanc", "noir"]
    (tmp_path / "renamed.json").write_text(json.dumps({"labels": labels}))
    with running_server(MODEL_VA_PATH=str(path), MODEL_VB_PATH="") as server:
        with server.client() as client:
            r = client.post("/v1/infer", json={"image_b64": image_b64((255, 0, 0))})
    assert r.json()["predictions"][0]["label"] == "rouge", r.text
