"""Demo models vA/vB: reproducible bytes and real colour classification."""

from __future__ import annotations

import pytest

from edgeserve.inference.demo import build_demo_model, main, write_demo_models
from edgeserve.inference.model import Model
from edgeserve.inference.preprocess import decode_image, to_tensor

PRIMARIES = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
MAX_PIXELS = 40_000_000


def classify(model: Model, data: bytes) -> tuple[str, float]:
    image = decode_image(data, MAX_PIXELS)
    probs = model.run(to_tensor(image, model.meta, model.meta.input_size))
    best = model.top_k(probs[0], 1)[0]
    return best.label, best.score


@pytest.fixture(scope="module")
def demo_models(models_dir) -> dict[str, Model]:
    return {v: Model.load(models_dir / f"{v}.onnx") for v in ("vA", "vB")}


@pytest.mark.parametrize("variant", ["vA", "vB"])
def test_committed_demo_model_equals_a_fresh_build(models_dir, variant):
    committed = (models_dir / f"{variant}.onnx").read_bytes()
    fresh = build_demo_model(variant)
    assert committed == fresh, (
        f"models/{variant}.onnx differs from a fresh build ({len(committed)} vs {len(fresh)} "
        "bytes): run `python -m edgeserve.inference.demo models`"
    )


def test_demo_build_is_byte_for_byte_reproducible():
    assert build_demo_model("vB") == build_demo_model("vB")


def test_unknown_demo_variant_is_refused():
    with pytest.raises(ValueError, match="vC"):
        build_demo_model("vC")


def test_write_demo_models_writes_va_and_vb(tmp_path):
    paths = write_demo_models(tmp_path / "out")
    assert [p.name for p in paths] == ["vA.onnx", "vB.onnx"], paths
    assert paths[0].read_bytes() == build_demo_model("vA")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["vA.onnx", "vB.onnx"]


def test_demo_cli_writes_into_the_given_folder(tmp_path, capsys):
    assert main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "vA.onnx"), str(tmp_path / "vB.onnx")], printed


def test_demo_models_carry_their_preprocessing_metadata(demo_models):
    meta = demo_models["vB"].meta
    got = (meta.layout, meta.scale, meta.mean, meta.std, meta.output, meta.input_size)
    assert got == ("NCHW", 1 / 255, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "logits", (64, 64)), got
    assert meta.labels[-1] == "orange" and len(meta.labels) == 9, meta.labels
    assert demo_models["vA"].meta.labels == (
        "red", "green", "blue", "yellow", "cyan", "magenta", "white", "black"
    )  # fmt: skip


def test_demo_models_have_dynamic_batch_and_size(demo_models):
    model = demo_models["vA"]
    assert model.batch_dynamic and not model.meta.fixed, model.session.get_inputs()[0]
    assert (model.size_for(17), model.size_for(512)) == ((17, 17), (512, 512))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("colour", list(PRIMARIES))
@pytest.mark.parametrize("variant", ["vA", "vB"])
def test_primary_colours_are_classified_right_by_both_variants(
    demo_models, solid, variant, colour, fmt
):
    label, score = classify(demo_models[variant], solid(PRIMARIES[colour], fmt))
    assert label == colour, (variant, fmt, label, score)


def test_orange_is_orange_for_vb_and_yellow_for_va(demo_models, solid):
    orange = solid((255, 140, 0))
    got = {v: classify(demo_models[v], orange)[0] for v in ("vA", "vB")}
    assert got == {"vA": "yellow", "vB": "orange"}, got


def test_variants_score_the_same_image_differently(demo_models, solid):
    red = solid((255, 0, 0))
    score_a, score_b = (classify(demo_models[v], red)[1] for v in ("vA", "vB"))
    assert abs(score_a - score_b) > 0.01, (score_a, score_b)
