"""Bring your own model on a real server: each real pipeline, described by its sidecar, gives
the reference answer after a hot load and through `edgeserve infer` offline; hot loads refuse
a label set that differs from the other slot's unless told it is intended."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeserve.cli import app
from tests.support.metrics import metric_sum
from tests.support.models import save_nhwc_probabilities
from tests.support.pipelines import (
    LABELS,
    PIPELINES,
    TOLERANCE,
    probabilities,
    reference_tensor,
    sample_images,
    save_probe_model,
)
from tests.support.server import ADMIN_TOKEN, running_server
from tests.support.waiting import wait_until

IMAGES = sample_images()
OTHER_LABELS = ["ant", "bee", "cow", "doe", "elk"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("byom")
    for name, pipeline in PIPELINES.items():
        save_probe_model(folder / f"{name}.onnx", pipeline)
    save_probe_model(folder / "relabelled.onnx", PIPELINES["torchvision"], labels=OTHER_LABELS)
    for name, data in IMAGES.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def server(model_dir):
    with running_server(
        MODEL_VA_PATH=str(model_dir / "torchvision.onnx"),
        MODEL_VB_PATH="",
        MODEL_DIR=str(model_dir),
    ) as server:
        yield server


def by_label(predictions: list[dict]) -> np.ndarray:
    scores = {p["label"]: p["score"] for p in predictions}
    return np.array([scores[label] for label in LABELS])


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_serves_the_reference_after_a_hot_load_and_offline(server, model_dir, name):
    path = model_dir / f"{name}.onnx"
    with server.admin() as admin:
        r = admin.post("/admin/models/A", json={"path": path.name})
    assert r.status_code == 200, r.text
    offline = CliRunner().invoke(
        app,
        ["infer", *(str(model_dir / i) for i in sorted(IMAGES)), "--model", str(path), "--json"],
    )
    assert offline.exit_code == 0, offline.output
    assert "warning" not in offline.stderr, offline.stderr  # the sidecar describes everything
    offline_answers = [json.loads(line) for line in offline.stdout.splitlines()]
    for image, cli_answer in zip(sorted(IMAGES), offline_answers, strict=True):
        want = probabilities(path, reference_tensor(PIPELINES[name], IMAGES[image]))
        with server.client() as client:
            body = {"image_b64": base64.b64encode(IMAGES[image]).decode(), "top_k": 5}
            r = client.post("/v1/infer", json=body)
        assert r.status_code == 200 and r.json()["model"]["name"] == name, r.text
        served, offline_scores = (
            by_label(r.json()["predictions"]),
            by_label(cli_answer["predictions"]),
        )
        deltas = (np.abs(served - want).max(), np.abs(offline_scores - want).max())
        print(f"{name} {image}: server {deltas[0]:.1e}, offline {deltas[1]:.1e}")
        assert max(deltas) <= TOLERANCE, (name, image, deltas, served, want)
    assert "model_preprocessing_assumed" not in server.output()


def test_a_model_without_description_is_served_with_a_warning_naming_the_defaults(
    server, model_dir
):
    save_probe_model(model_dir / "bare.onnx", PIPELINES["torchvision"])
    (model_dir / "bare.json").unlink()
    with server.admin() as admin:
        assert admin.post("/admin/models/A", json={"path": "bare.onnx"}).status_code == 200
    warnings = [
        json.loads(line)
        for line in server.output().splitlines()
        if '"model_preprocessing_assumed"' in line
    ]
    assert warnings and "mean=[0.485, 0.456, 0.406]" in warnings[-1]["message"], warnings


def test_hot_load_with_other_labels_is_refused_unless_intended(server, model_dir):
    with server.admin() as admin:
        assert admin.post("/admin/models/A", json={"path": "torchvision.onnx"}).status_code == 200
        refused = admin.post("/admin/models/B", json={"path": "relabelled.onnx"})
        models = admin.get("/admin/config").json()["models"]
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "labels_mismatch", refused.text
        assert "B" not in models, "a refused load changes nothing"
        body = {"path": "relabelled.onnx", "allow_label_change": True}
        assert admin.post("/admin/models/B", json=body).status_code == 200
        assert admin.post("/admin/config", json={"shadow_enabled": True}).status_code == 200
    with server.client() as client:
        body = {"image_b64": base64.b64encode(IMAGES["landscape.png"]).decode()}
        assert client.post("/v1/infer", json=body).status_code == 200
    compared = wait_until(
        "the shadow comparison to be counted",
        lambda: metric_sum(server, "edgeserve_shadow_comparisons_total"),
    )
    assert compared == 1, compared
    assert metric_sum(server, "edgeserve_shadow_comparisons_total", result="no_common_label") == 1
    assert metric_sum(server, "edgeserve_shadow_comparisons_total", result="disagree") == 0


def test_allow_label_change_must_be_a_boolean(server):
    with server.admin() as admin:
        r = admin.post("/admin/models/B", json={"path": "timm.onnx", "allow_label_change": "yes"})
    assert r.status_code == 422 and "allow_label_change" in r.json()["error"]["message"], r.text


def test_a_hot_load_answers_the_warnings_it_logged(server, model_dir):
    save_probe_model(model_dir / "undescribed.onnx", PIPELINES["torchvision"])
    (model_dir / "undescribed.json").unlink()
    with server.admin() as admin:
        body = {"path": "undescribed.onnx", "allow_label_change": True}  # whatever B holds
        r = admin.post("/admin/models/A", json=body)
    assert r.status_code == 200, r.text
    assert any("describes no preprocessing" in w for w in r.json()["warnings"]), r.text


def test_a_hot_load_answers_that_scores_described_as_logits_look_like_probabilities(
    server, model_dir
):
    save_nhwc_probabilities(model_dir / "softmaxed.onnx")
    (model_dir / "softmaxed.json").write_text(json.dumps({"output": "logits"}))
    with server.admin() as admin:
        body = {"path": "softmaxed.onnx", "allow_label_change": True}  # whatever B holds
        r = admin.post("/admin/models/A", json=body)
    assert r.status_code == 200, r.text
    assert any("sum to 1" in w for w in r.json()["warnings"]), r.text


def test_admin_load_prints_the_warnings_of_the_model_it_loaded(server, model_dir):
    save_probe_model(model_dir / "bare_cli.onnx", PIPELINES["timm"])
    (model_dir / "bare_cli.json").unlink()
    args = ["admin", "load", "A", "bare_cli.onnx", "--allow-label-change"]
    args += ["--url", server.url, "--token", ADMIN_TOKEN]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "warning: model bare_cli describes no preprocessing" in result.stderr, result.stderr


def test_labels_mismatch_names_the_missing_sidecar_when_b_has_class_n_labels(server, model_dir):
    save_probe_model(model_dir / "unlabelled.onnx", PIPELINES["torchvision"])
    (model_dir / "unlabelled.json").unlink()
    with server.admin() as admin:
        body = {"path": "torchvision.onnx", "allow_label_change": True}  # whatever B holds
        assert admin.post("/admin/models/A", json=body).status_code == 200
        refused = admin.post("/admin/models/B", json={"path": "unlabelled.onnx"})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "labels_mismatch", refused.text
    assert "class_0, class_1, ... defaults" in error["message"], error
    assert "unlabelled.json" in error["message"], error
