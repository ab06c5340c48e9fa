"""Model metadata: metadata_props, sidecar overrides, defaults and validation."""

from __future__ import annotations

import json

import pytest

from edgeserve.errors import ModelLoadError
from edgeserve.inference.description.vocabulary import IMAGENET_MEAN, IMAGENET_STD
from edgeserve.inference.metadata import build_meta, sidecar_path
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


# --- the preprocessing description ---------------------------------------------------------

GREY = ["batch", 1, "h", "w"]


def test_input_size_takes_height_and_width():
    meta = build_meta({"input_size": "[32, 128]"}, NCHW, OUT3)
    assert (meta.input_size, meta.fixed) == ((32, 128), False), meta


@pytest.mark.parametrize("size", ["[32]", "[0, 32]", "[32, 32, 3]", "big", 5000])
def test_bad_input_size_is_refused(size):
    with pytest.raises(ModelLoadError, match="input_size"):
        build_meta({"input_size": size}, NCHW, OUT3)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"resize": "squash"}, "resize .* must be one of"),
        ({"interpolation": "area"}, "interpolation .* must be one of"),
        ({"color": "cmyk"}, "color .* must be one of"),
        ({"resize_size": 256}, 'applies only to resize "center_crop"'),
        ({"resize": "letterbox", "crop_pct": 0.9}, 'applies only to resize "center_crop"'),
        ({"resize": "center_crop", "crop_pct": 0.9, "resize_size": 256}, "keep one"),
        ({"resize": "center_crop", "crop_pct": 1.2}, "crop_pct .* must be > 0 and <= 1"),
        ({"resize": "center_crop", "resize_size": 200}, "must cover the crop"),
        ({"pad_value": 256}, "pad_value .* whole number from 0 to 255"),
        ({"pad_value": [1, 2]}, "pad_value .* one number or 3"),
        ({"exif_transpose": "yes"}, "exif_transpose .* true or false"),
    ],
)
def test_bad_preprocessing_values_are_refused_in_one_line(raw, problem):
    with pytest.raises(ModelLoadError, match=problem) as err:
        build_meta(raw, NCHW, OUT3)
    assert "\n" not in err.value.message, err.value.message


def test_center_crop_resize_defaults_to_input_over_0_875():
    meta = build_meta({"resize": "center_crop", "input_size": 299}, NCHW, OUT3)
    assert meta.crop_resize((299, 299)) == 342, "round(299 / 0.875), as torchvision's Inception"


def test_crop_pct_sets_the_resize_as_timm_does():
    meta = build_meta({"resize": "center_crop", "crop_pct": 0.95}, NCHW, OUT3)
    assert meta.crop_resize((224, 224)) == 235, "floor(224 / 0.95)"


def test_another_requested_size_keeps_the_described_crop_ratio():
    meta = build_meta({"resize": "center_crop", "resize_size": 256}, NCHW, OUT3)
    assert (meta.crop_resize((224, 224)), meta.crop_resize((112, 112))) == (256, 128)


def test_pad_value_takes_one_number_or_one_per_channel():
    one = build_meta({"pad_value": 114}, NCHW, OUT3).pad_value
    each = build_meta({"pad_value": "[255, 0, 10]"}, NCHW, OUT3).pad_value
    assert (one, each) == ((114, 114, 114), (255, 0, 10)), (one, each)


def test_one_channel_model_is_grayscale_with_one_mean_and_std():
    meta = build_meta({"mean": 0.1307, "std": 0.3081}, GREY, OUT3)
    got = (meta.color, meta.channels, meta.mean, meta.std, meta.sources["color"])
    assert got == ("grayscale", 1, (0.1307,), (0.3081,), "model"), got


def test_rgb_colour_for_a_one_channel_model_is_refused():
    with pytest.raises(ModelLoadError, match="1 channel: use grayscale"):
        build_meta({"color": "rgb"}, GREY, OUT3)


def test_three_means_for_a_one_channel_model_are_refused():
    with pytest.raises(ModelLoadError, match="one number or 1"):
        build_meta({"mean": [0.5, 0.5, 0.5]}, GREY, OUT3)


def test_mean_in_0_255_units_with_a_1_255_scale_is_refused():
    with pytest.raises(ModelLoadError, match=r"mean .* outside 0..1, the range pixels take"):
        build_meta({"mean": [123.675, 116.28, 103.53], "scale": "1/255"}, NCHW, OUT3)


def test_mean_in_0_255_units_with_scale_1_is_accepted():
    assert build_meta({"mean": [104, 117, 123], "scale": 1}, NCHW, OUT3).mean == (104, 117, 123)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("classes", '["r", "g", "b"]'),
        ("names", "{0: 'r', 1: 'g', 2: 'b'}"),  # ultralytics writes a Python dict literal
        ("names", '{"0": "r", "1": "g", "2": "b"}'),
        ("labels", "r\ng\nb\n"),
    ],
)
def test_labels_are_found_under_the_keys_exporters_use(key, value):
    meta = build_meta({}, NCHW, OUT3, embedded={key: value})
    assert (meta.labels, meta.sources["labels"]) == (("r", "g", "b"), "model"), meta.labels


def test_an_unrelated_names_entry_in_the_model_is_ignored():
    meta = build_meta({}, NCHW, OUT3, embedded={"names": "producer"})
    assert meta.labels == ("class_0", "class_1", "class_2"), meta.labels


def test_label_map_with_a_missing_index_is_refused():
    with pytest.raises(ModelLoadError, match="every index from 0 to 2"):
        build_meta({"labels": {"0": "r", "1": "g", "3": "b"}}, NCHW, OUT3)


def test_each_value_says_where_it_came_from():
    meta = build_meta({"mean": 0.5}, NCHW, OUT3, embedded={"std": "0.5", "labels": '["a","b","c"]'})
    got = {k: meta.sources[k] for k in ("mean", "std", "labels", "scale", "layout")}
    want = {"mean": "sidecar", "std": "model", "labels": "model", "scale": "assumed"}
    assert got == {**want, "layout": "model"}, got


def test_a_model_without_description_lists_every_assumed_default():
    meta = build_meta({}, NCHW, OUT3)
    assert not meta.described and set(meta.assumed()) >= {"mean", "std", "scale", "output"}


def test_sidecar_keys_starting_with_underscore_are_comments(tiny_model):
    path = tiny_model()
    sidecar_path(path).write_text(json.dumps({"_comment": "from models init", "mean": 0.5}))
    assert Model.load(path).meta.mean == (0.5, 0.5, 0.5)


def test_opencv_backend_without_opencv_installed_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setattr("edgeserve.inference.metadata.opencv_installed", lambda: False)
    with pytest.raises(ModelLoadError) as error:
        build_meta({"resize_backend": "opencv"}, NCHW, OUT3)
    assert "pip install 'edgeserve[opencv]'" in error.value.message
    assert "\n" not in error.value.message


def test_labels_are_read_from_a_newline_encoded_character_key():
    meta = build_meta({}, NCHW, OUT3, embedded={"character": "0\n90\n180"})
    assert meta.labels == ("0", "90", "180")


def test_a_character_alphabet_that_is_not_one_name_per_class_is_skipped():
    # A PaddleOCR recogniser's character key is its alphabet, not the output's class names.
    meta = build_meta({}, NCHW, OUT3, embedded={"character": "a\nb\nc\nd\ne"})
    assert meta.labels == ("class_0", "class_1", "class_2")
