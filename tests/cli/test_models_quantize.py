"""edgeserve models quantize: a static int8 copy, calibrated on the user's images through the
model's own preprocessing, and figures measured in the same run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edgeserve.cli import app
from edgeserve.inference.model import Model
from edgeserve.inference.quantize import model_inputs, split_images
from tests.cli.conftest import CLEAN_ENV
from tests.support.pipelines import PIPELINES, natural_image, save_probe_model

IMAGES = 10  # --held-out 0.2: 8 calibrate, 2 judge


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A probe model with a sidecar (torchvision's pipeline) and a folder of images."""
    root = tmp_path_factory.mktemp("quantize")
    save_probe_model(root / "probe.onnx", PIPELINES["torchvision"])
    images = root / "images"
    images.mkdir()
    for i in range(IMAGES):
        natural_image(240 + 8 * i, 232, seed=i).save(images / f"{i}.png")
    return root


def quantize(folder: Path, *extra: str):
    args = ["models", "quantize", str(folder / "probe.onnx"), "--calibrate", str(folder / "images")]
    return CliRunner().invoke(app, [*args, "--seconds", "0.3", *extra], env=CLEAN_ENV)


@pytest.fixture(scope="module")
def report(folder) -> dict:
    result = quantize(folder, "--force", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_quantize_writes_a_qdq_int8_model_next_to_the_original(folder, report):
    out = folder / "probe.int8.onnx"
    assert report["quantized"] == str(out)
    graph = onnx.load(str(out)).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops, ops
    int8 = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8, "the weights are stored as int8"


def test_quantize_carries_the_sidecar_over_and_the_result_loads(folder, report):
    out = folder / "probe.int8.onnx"
    assert (folder / "probe.int8.json").read_text() == (folder / "probe.json").read_text()
    fp32, int8 = Model.load(folder / "probe.onnx"), Model.load(out)
    assert int8.meta == fp32.meta


def test_quantize_calibrates_on_all_but_the_held_out_images(report):
    assert (report["calibration_images"], report["held_out_images"]) == (8, 2)


def test_quantize_reports_sizes_and_speed_of_both_models(folder, report):
    assert report["size_bytes"] == {
        "fp32": (folder / "probe.onnx").stat().st_size,
        "int8": (folder / "probe.int8.onnx").stat().st_size,
    }
    speed = report["images_per_s"]
    assert speed["fp32"] > 0 and speed["int8"] > 0
    assert report["speedup"] == pytest.approx(speed["int8"] / speed["fp32"])


def test_quantize_reports_agreement_and_max_delta_on_the_held_out_images(folder, report):
    fp32, int8 = Model.load(folder / "probe.onnx"), Model.load(folder / "probe.int8.onnx")
    held_out = model_inputs(fp32, split_images(folder / "images", 0.2).held_out)
    ones = [fp32.run(x)[0] for x in held_out]
    twos = [int8.run(x)[0] for x in held_out]
    agreeing = sum(int(np.argmax(a) == np.argmax(b)) for a, b in zip(ones, twos, strict=True))
    delta = max(float(np.abs(a - b).max()) for a, b in zip(ones, twos, strict=True))
    assert report["top1_agreement"] == agreeing / len(held_out)
    assert report["max_abs_delta_p"] == pytest.approx(delta, abs=1e-6)
    assert 0 < delta < 0.5, "int8 moves the probabilities a little, not wholly"


def test_quantize_prints_the_figures_and_ends_with_the_command_that_loads_it_as_b(folder):
    result = quantize(folder, "-o", str(folder / "printed.onnx"))
    assert result.exit_code == 0, result.output
    for figure in ("size (MB)", "images/s (1 thread)", "top-1 agreement", "max |Δp|"):
        assert figure in result.stdout, result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert last == (
        f"cp {folder / 'printed.onnx'} {folder / 'printed.json'} $MODEL_DIR/ && "
        "edgeserve admin load B printed.onnx && edgeserve admin config set --shadow"
    ), last


def test_quantize_refuses_to_overwrite_an_output_without_force(folder, report):
    result = quantize(folder)
    assert result.exit_code == 2 and "--force" in result.stderr, result.output


def test_quantize_needs_two_images_in_one_line(tmp_path, folder):
    (tmp_path / "one.png").write_bytes((folder / "images" / "0.png").read_bytes())
    args = ["models", "quantize", str(folder / "probe.onnx"), "--calibrate", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "q.onnx")], env=CLEAN_ENV)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().count("\n") == 0 and "at least 2" in result.stderr
