"""edgeserve models inspect|demo: offline, no server."""

from __future__ import annotations

import hashlib
import json

from tests.support.server import REPO

VA = REPO / "models" / "vA.onnx"


def test_inspect_shows_io_layout_labels_preprocessing_opset_size_and_version(run):
    result = run("models", "inspect", str(VA))
    assert result.exit_code == 0, result.output
    sha256 = hashlib.sha256(VA.read_bytes()).hexdigest()
    for expected in (
        "image tensor(float) [batch, 3, height, width]",
        "logits tensor(float) [batch, 8]",
        "NCHW, RGB, 64x64",
        "red, green, blue",
        "mean [0, 0, 0], std [1, 1, 1]",
        "ai.onnx 17",
        f"{VA.stat().st_size} bytes",
        f"vA {sha256[:12]}",
        sha256,
    ):
        assert expected in result.stdout, (expected, result.stdout)


def test_inspect_json_is_one_object_with_every_field(run):
    result = run("models", "inspect", str(VA), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["opset"] == {"ai.onnx": 17} and info["layout"] == "NCHW", info
    assert info["inputs"][0]["shape"] == ["batch", 3, "height", "width"], info
    assert info["labels"][0] == "red" and info["num_classes"] == 8, info
    assert info["sha256"].startswith(info["version"]), info


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
    assert "eec50c3e7974" in result.stdout and "1ba345dc2317" in result.stdout, result.stdout


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
