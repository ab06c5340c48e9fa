"""Model metadata: metadata_props, sidecar overrides, defaults and validation."""

from __future__ import annotations

import json

import pytest

from edgeserve.errors import ModelLoadError
from edgeserve.inference.metadata import IMAGENET_MEAN, IMAGENET_STD, build_meta, sidecar_path
from edgeserve.inference.model import Model

NCHW = ["batch", 3, "h", "w"]
OUT3 = ["batch", 3]


def test_defaults_apply_when_the_model_has_no_metadata(tiny_model):
    meta = Model.load(tiny_model()).meta
    got = (meta.labels, meta.layout, meta.channel_order, meta.scale, meta.output)
    assert got == (("class_0", "class_1", "class_2"), "NCHW", "RGB", 1 / 255, "logits"), got
    assert (meta.mean, meta.std, meta.input_size) == (IMAGENET_MEAN, IMAGENET_STD, (224, 224))


def test_metadata_props_are_read(tiny_model):
    path = tiny_model(metadata={"labels": ["r", "g", "b"], "scale": "1/255", "img_size": 96})
    meta = Model.load(path).meta
    got = (meta.labels, meta.scale, meta.input_size)
    assert got == (("r", "g", "b"), 1 / 255, (96, 96)), got


def test_sidecar_json_overrides_labels(tiny_model):
    path = tiny_model(metadata={"labels": ["r", "g", "b"], "img_size": 96})
    sidecar_path(path).write_text(json.dumps({"labels": ["rouge", "vert", "bleu"]}))
    meta = Model.load(path).meta
    assert meta.labels == ("rouge", "vert", "bleu"), meta.labels
    assert meta.input_size == (96, 96), "keys the sidecar leaves out keep the model's value"


def test_sidecar_sits_next_to_the_model_without_the_onnx_suffix(tmp_path):
    assert sidecar_path(tmp_path / "vA.onnx") == tmp_path / "vA.json"


def test_sidecar_with_unknown_key_is_refused(tiny_model):
    path = tiny_model()
    sidecar_path(path).write_text(json.dumps({"lables": ["a", "b", "c"]}))
    with pytest.raises(ModelLoadError, match="unknown keys \\['lables'\\]"):
        Model.load(path)


def test_sidecar_that_is_not_json_is_refused(tiny_model):
    path = tiny_model()
    sidecar_path(path).write_text("{labels: oops")
    with pytest.raises(ModelLoadError, match="not readable JSON") as err:
        Model.load(path)
    assert "\n" not in err.value.message, err.value.message


def test_label_count_must_match_the_output_size(tiny_model):
    with pytest.raises(ModelLoadError, match="has 2 entries but the model outputs 3"):
        Model.load(tiny_model(metadata={"labels": ["a", "b"]}))


def test_labels_that_are_not_a_json_list_are_refused():
    with pytest.raises(ModelLoadError, match="JSON list"):
        build_meta({"labels": "a,b,c"}, NCHW, OUT3)


def test_duplicate_labels_are_allowed_as_in_imagenet():
    assert build_meta({"labels": ["crane", "x", "crane"]}, NCHW, OUT3).labels[2] == "crane"


def test_layout_is_inferred_nhwc_from_a_last_axis_of_three():
    meta = build_meta({}, [1, 32, 32, 3], [1, 3])
    assert (meta.layout, meta.fixed, meta.input_size) == ("NHWC", True, (32, 32)), meta


def test_layout_that_contradicts_the_input_shape_is_refused():
    with pytest.raises(ModelLoadError, match="layout NHWC"):
        build_meta({"layout": "NHWC"}, [1, 3, 32, 32], [1, 3])


def test_unknown_layout_value_is_refused():
    with pytest.raises(ModelLoadError, match=r"layout .* must be one of"):
        build_meta({"layout": "CHW"}, NCHW, OUT3)


def test_unknown_output_kind_is_refused():
    with pytest.raises(ModelLoadError, match=r"output .* must be one of"):
        build_meta({"output": "softmax"}, NCHW, OUT3)


def test_non_square_fixed_input_is_served_at_its_own_size():
    meta = build_meta({}, [1, 3, 32, 128], [1, 3])
    assert (meta.input_size, meta.fixed, meta.sources["input_size"]) == ((32, 128), True, "model")


def test_img_size_that_contradicts_a_fixed_input_is_refused():
    with pytest.raises(ModelLoadError, match="fixed at 32x32"):
        build_meta({"img_size": "64"}, [1, 3, 32, 32], [1, 3])


@pytest.mark.parametrize("std", ["[1, 0, 1]", "[1, 1]", '[1, "x", 1]', "[1, NaN, 1]"])
def test_bad_std_is_refused(std):
    with pytest.raises(ModelLoadError, match="std"):
        build_meta({"std": std}, NCHW, OUT3)


def test_single_mean_value_applies_to_all_channels():
    assert build_meta({"mean": 0.5}, NCHW, OUT3).mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("scale", ["0", "-1", "abc", "1/0"])
def test_bad_scale_is_refused(scale):
    with pytest.raises(ModelLoadError, match="scale"):
        build_meta({"scale": scale}, NCHW, OUT3)


def test_symbolic_class_count_takes_the_label_count():
    assert build_meta({"labels": ["a", "b"]}, NCHW, ["batch", "k"]).labels == ("a", "b")


def test_symbolic_class_count_without_labels_is_refused():
    with pytest.raises(ModelLoadError, match="add a labels list"):
        build_meta({}, NCHW, ["batch", "k"])
