"""The int8 copy `edgeserve models quantize` writes, loaded as B with shadow on as its last
line says, agrees with A on the held-out images as often as the command reported."""

from __future__ import annotations

import base64
import json

import pytest
from typer.testing import CliRunner

from edgeserve.cli import app
from edgeserve.inference.quantize import split_images
from tests.support.metrics import metric_sum
from tests.support.pipelines import PIPELINES, natural_image, save_probe_model
from tests.support.server import running_server
from tests.support.waiting import wait_until

IMAGES = 20
HELD_OUT = 0.5  # 10 held-out images: one disagreement moves agreement by 10 points


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quantized")
    save_probe_model(folder / "probe.onnx", PIPELINES["torchvision"])
    images = folder / "images"
    images.mkdir()
    for i in range(IMAGES):
        natural_image(232 + 8 * i, 240, seed=100 + i).save(images / f"{i:02d}.png")
    return folder


def test_shadow_agreement_of_the_int8_copy_is_the_reported_one(model_dir):
    result = CliRunner().invoke(
        app,
        [
            *("models", "quantize", str(model_dir / "probe.onnx")),
            *("--calibrate", str(model_dir / "images"), "--held-out", str(HELD_OUT)),
            *("--seconds", "0.2", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    held_out = split_images(model_dir / "images", HELD_OUT).held_out
    assert report["held_out_images"] == len(held_out) == 10
    env = {
        "MODEL_VA_PATH": str(model_dir / "probe.onnx"),
        "MODEL_VB_PATH": "",
        "SHADOW_MAX_INFLIGHT": str(len(held_out)),  # none dropped: every image is compared
    }
    with running_server(MODEL_DIR=str(model_dir), **env) as server:
        with server.admin() as admin:  # what the command's last line does, through the API
            r = admin.post("/admin/models/B", json={"path": "probe.int8.onnx"})
            assert r.status_code == 200, r.text
            assert admin.post("/admin/config", json={"shadow_enabled": True}).status_code == 200
        with server.client() as client:
            for path in held_out:
                body = {"image_b64": base64.b64encode(path.read_bytes()).decode()}
                assert client.post("/v1/infer", json=body).status_code == 200
        wait_until(
            f"{len(held_out)} shadow comparisons",
            lambda: metric_sum(server, "edgeserve_shadow_comparisons_total"),
            lambda compared: compared == len(held_out),
        )
        agreed = metric_sum(server, "edgeserve_shadow_comparisons_total", result="agree")
    print(f"reported {report['top1_agreement']:.1%}, served {agreed / len(held_out):.1%}")
    assert abs(agreed / len(held_out) - report["top1_agreement"]) <= 0.02, (agreed, report)
