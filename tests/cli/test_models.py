"""edgeserve models inspect|demo: offline, no server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import pytest

from edgeserve.inference.description.vocabulary import PREPROCESSING_KEYS
from edgeserve.inference.model import Model
from edgeserve.inference.version import described_version
from tests.support.models import save_nhwc_probabilities
from tests.support.server import REPO

VA = REPO / "models" / "vA.onnx"


def strip_metadata(path: Path, keep: tuple[str, ...] = ()) -> None:
    """Drop the model's metadata_props (all but `keep`), as many exporters leave them."""
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key in keep]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, str(path))


def test_inspect_shows_io_layout_labels_preprocessing_opset_size_and_version(run):
    result = run("models", "inspect", str(VA))
    assert result.exit_code == 0, result.output
    version = described_version(hashlib.sha256(VA.read_bytes()).hexdigest(), {})
    for expected in (
        "image tensor(float) [batch, 3, height, width]",
        "logits tensor(float) [batch, 8]",
        "[64, 64]  (from model)",
        "red, green, blue",
        "ai.onnx 17",
        f"{VA.stat().st_size} bytes",
        f"vA {version[:12]}",
    ):
        assert expected in result.stdout, (expected, result.stdout)


def test_inspect_json_is_one_object_with_every_field(run):
    result = run("models", "inspect", str(VA), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["opset"] == {"ai.onnx": 17} and info["layout"] == "NCHW", info
    assert info["inputs"][0]["shape"] == ["batch", 3, "height", "width"], info
    assert info["labels"][0] == "red" and info["num_classes"] == 8, info
    assert described_version(info["sha256"], {})[:12] == info["version"], info


def test_inspect_of_a_missing_file_is_one_line_naming_it(run):
    result = run("models", "inspect", "nowhere/model.onnx")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nowhere/model.onnx does not exist" in lines[0], lines


def test_inspect_of_a_file_that_is_not_onnx_is_one_line(run, tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_text("hello")
    result = run("models", "inspect", str(bogus))
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a loadable ONNX model" in lines[0], lines


def test_demo_rebuilds_the_committed_demo_models_byte_for_byte(run, tmp_path):
    result = run("models", "demo", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    for name in ("vA.onnx", "vB.onnx"):
        assert (tmp_path / "out" / name).read_bytes() == (REPO / "models" / name).read_bytes()
    assert "a9fc666bece4" in result.stdout and "657ade765658" in result.stdout, result.stdout


def test_demo_writes_to_models_by_default(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("models", "demo", "--json")
    assert result.exit_code == 0, result.output
    paths = [m["path"] for m in json.loads(result.stdout)["models"]]
    assert paths == ["models/vA.onnx", "models/vB.onnx"], paths
    assert (tmp_path / "models" / "vB.onnx").is_file()


def test_demo_into_an_unwritable_place_is_one_line(run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    result = run("models", "demo", str(blocker / "sub"))
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot write the demo models" in result.stderr, result.stderr


# --- inspect: where each value came from ---------------------------------------------------


def test_inspect_marks_each_value_from_sidecar_from_model_or_assumed(run, tmp_path):
    path = tmp_path / "vA.onnx"
    path.write_bytes(VA.read_bytes())
    (tmp_path / "vA.json").write_text(json.dumps({"resize": "letterbox", "pad_value": 114}))
    result = run("models", "inspect", str(path), "--json")
    assert result.exit_code == 0, result.output
    sources = json.loads(result.stdout)["sources"]
    got = {k: sources[k] for k in ("resize", "pad_value", "mean", "interpolation")}
    assert got == {
        "resize": "from sidecar",
        "pad_value": "from sidecar",
        "mean": "from model",
        "interpolation": "assumed",
    }, sources


def test_inspect_table_shows_the_source_next_to_each_value(run):
    result = run("models", "inspect", str(VA))
    assert result.exit_code == 0, result.output
    for expected in ("mean", "[0, 0, 0]  (from model)", "bilinear  (assumed)"):
        assert expected in result.stdout, (expected, result.stdout)


def test_inspect_warns_about_a_model_that_describes_nothing(run, tmp_path):
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(save_nhwc_probabilities(tmp_path / "tmp.onnx").read_bytes())
    strip_metadata(bare)
    info = json.loads(run("models", "inspect", str(bare), "--json").stdout)
    assert any("defaults assumed: resize=stretch" in w for w in info["warnings"]), info["warnings"]
    assert any("sum to 1" in w for w in info["warnings"]), info["warnings"]


# --- init: a starting sidecar -------------------------------------------------------------


def copy_of(model: Path, tmp_path: Path) -> Path:
    path = tmp_path / model.name
    path.write_bytes(model.read_bytes())
    return path


@pytest.mark.parametrize("preset", [None, "torchvision", "timm", "caffe", "paddle", "letterbox"])
def test_init_writes_a_sidecar_the_model_then_loads_with(run, tmp_path, preset):
    path = copy_of(VA, tmp_path)
    strip_metadata(path, keep=("labels",))
    result = run("models", "init", str(path), *(["--preset", preset] if preset else []))
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "vA.json").read_text())
    assert sidecar["labels"][0] == "red" and sidecar["_todo"], sidecar
    assert "still to decide" in result.stdout and sidecar["_todo"][0] in result.stdout
    meta = Model.load(path).meta
    written = [k for k in PREPROCESSING_KEYS if k in sidecar]
    assert all(meta.sources[k] == "sidecar" for k in written), meta.sources
    assert {"input_size", "scale", "mean", "std", "output"} <= set(written), written
    if preset:
        want = {"letterbox": "letterbox"}
        assert meta.resize == want.get(preset, "center_crop"), meta


def test_init_paddle_preset_resizes_with_opencv(run, tmp_path):
    pytest.importorskip("cv2", reason="the opencv extra is not installed")
    path = copy_of(VA, tmp_path)
    strip_metadata(path, keep=("labels",))
    assert run("models", "init", str(path), "--preset", "paddle").exit_code == 0
    meta = Model.load(path).meta
    assert (meta.resize_backend, meta.resize, meta.resize_size) == ("opencv", "center_crop", 256)


def test_init_torchvision_preset_is_the_imagenet_eval_pipeline(run, tmp_path):
    path = copy_of(VA, tmp_path)
    strip_metadata(path, keep=("labels",))
    assert run("models", "init", str(path), "--preset", "torchvision").exit_code == 0
    sidecar = json.loads((tmp_path / "vA.json").read_text())
    got = {k: sidecar[k] for k in ("resize", "resize_size", "interpolation", "mean", "std")}
    assert got == {
        "resize": "center_crop",
        "resize_size": 256,
        "interpolation": "bilinear",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }, got
    assert sidecar["input_size"] == 224, "a dynamic model gets the usual training size"


def test_init_finds_a_model_that_outputs_probabilities(run, tmp_path):
    path = save_nhwc_probabilities(tmp_path / "probs.onnx")
    strip_metadata(path)
    assert run("models", "init", str(path)).exit_code == 0
    sidecar = json.loads((tmp_path / "probs.json").read_text())
    assert (sidecar["output"], sidecar["layout"], sidecar["input_size"]) == (
        "probabilities",
        "NHWC",
        32,
    ), sidecar
    assert any(t.startswith("labels:") for t in sidecar["_todo"]), sidecar["_todo"]


def test_init_refuses_to_overwrite_a_sidecar_without_force(run, tmp_path):
    path = copy_of(VA, tmp_path)
    (tmp_path / "vA.json").write_text("{}")
    result = run("models", "init", str(path))
    assert result.exit_code == 2 and "--force" in result.stderr, result.output
    assert (tmp_path / "vA.json").read_text() == "{}"
    assert run("models", "init", str(path), "--force").exit_code == 0
    assert "_todo" in json.loads((tmp_path / "vA.json").read_text())
