"""Model: load and validate, describe, warm, run (softmax), top_k."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
from onnx import TensorProto, helper
from PIL import Image

from edgeserve.errors import EdgeserveError, InferenceError, ModelLoadError
from edgeserve.inference.model import Model, Prediction, softmax
from edgeserve.inference.preprocess import to_tensor
from edgeserve.inference.version import described_version

PLAIN = {"mean": [0, 0, 0], "std": [1, 1, 1], "labels": ["red", "green", "blue"]}


def write_graph(tmp_path, nodes, inputs, outputs, name="odd"):
    graph = helper.make_graph(nodes, name, inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def top1(model: Model, rgb, size: int) -> str:
    tensor = to_tensor(Image.new("RGB", (40, 30), rgb), model.meta, size)
    return model.top_k(model.run(tensor)[0], 1)[0].label


# --- load and validate -------------------------------------------------------------------


def test_load_sets_name_version_and_class_count(tiny_model):
    path = tiny_model(name="vZ")
    model = Model.load(path)
    expected = described_version(hashlib.sha256(path.read_bytes()).hexdigest(), {})[:12]
    got = (model.name, model.version, model.num_classes, model.runner.input_name)
    assert got == ("vZ", expected, 3, "image"), got


def test_describe_gives_path_name_and_version(tiny_model):
    path = tiny_model(name="vZ")
    model = Model.load(path, intra_op_threads=1)
    assert model.describe() == {"path": str(path), "name": "vZ", "version": model.version}


def test_missing_model_file_raises_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist") as err:
        Model.load(tmp_path / "nope.onnx")
    assert err.value.code == "model_load_failed" and err.value.status_code == 422


def test_directory_instead_of_model_file_raises_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="is a directory"):
        Model.load(tmp_path)


def test_bytes_that_are_not_onnx_raise_model_load_error(tmp_path):
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"this is not a protobuf at all \x00\xff" * 10)
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model") as err:
        Model.load(bad)
    assert "\n" not in err.value.message, err.value.message


def test_truncated_onnx_file_raises_model_load_error(tmp_path, models_dir):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes((models_dir / "vA.onnx").read_bytes()[:300])
    with pytest.raises(ModelLoadError):
        Model.load(cut)


def test_model_with_two_inputs_is_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    out = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3, 8, 8])
    path = write_graph(tmp_path, [helper.make_node("Add", ["x", "y"], ["z"])], [x, y], [out])
    with pytest.raises(ModelLoadError, match="2 inputs"):
        Model.load(path)


def test_model_with_non_image_input_is_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    path = write_graph(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [x], [out])
    with pytest.raises(ModelLoadError, match="4-D image tensor"):
        Model.load(path)


def test_model_without_a_three_channel_axis_is_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 8, 8])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])
    node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=0)
    path = write_graph(tmp_path, [node], [x], [out])
    with pytest.raises(ModelLoadError, match="3-channel"):
        Model.load(path)


def test_model_whose_output_is_not_n_by_k_is_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    path = write_graph(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [x], [out])
    with pytest.raises(ModelLoadError, match=r"\[N, K\]"):
        Model.load(path)


def test_model_with_integer_input_is_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 8, 8])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["xf"], ["y"], axes=[2, 3], keepdims=0),
    ]
    path = write_graph(tmp_path, nodes, [x], [out])
    with pytest.raises(ModelLoadError, match="float32"):
        Model.load(path)


def test_model_with_a_fixed_batch_above_one_is_refused(tiny_model):
    with pytest.raises(ModelLoadError, match="fixed batch of 4"):
        Model.load(tiny_model(batch=4))


# --- layouts and sizes -------------------------------------------------------------------


def test_nhwc_fixed_size_probability_model_loads_and_classifies(tiny_model):
    metadata = {**PLAIN, "output": "probabilities"}  # layout left out: inferred from the shape
    path = tiny_model(layout="NHWC", size=32, batch=1, output="probabilities", metadata=metadata)
    model = Model.load(path)
    meta = model.meta
    got = (meta.layout, meta.fixed, meta.input_size, model.batch_dynamic)
    assert got == ("NHWC", True, (32, 32), False), got
    labels = [top1(model, rgb, 32) for rgb in [(250, 10, 10), (0, 200, 0), (5, 5, 240)]]
    assert labels == ["red", "green", "blue"], labels


def test_fixed_size_model_accepts_only_its_own_size(tiny_model):
    model = Model.load(tiny_model(layout="NHWC", size=32, metadata=PLAIN))
    assert model.size_for(32) == (32, 32)
    with pytest.raises(EdgeserveError, match="it takes 32x32 images") as err:
        model.size_for(64)
    assert (err.value.status_code, err.value.code) == (422, "invalid_img_size")


def test_dynamic_size_model_accepts_any_size(tiny_model):
    model = Model.load(tiny_model(metadata=PLAIN))
    sizes = [model.size_for(s) for s in (1, 32, 224, 1000)]
    assert sizes == [(1, 1), (32, 32), (224, 224), (1000, 1000)], sizes
    assert model.size_for(None) == (224, 224), model.meta


def test_bgr_model_gets_channels_swapped(tiny_model):
    model = Model.load(tiny_model(channel_order="BGR", metadata={**PLAIN, "channel_order": "BGR"}))
    assert top1(model, (255, 0, 0), 16) == "red"


def test_dynamic_batch_model_runs_a_batch_of_two(tiny_model):
    model = Model.load(tiny_model(metadata=PLAIN))
    red = to_tensor(Image.new("RGB", (8, 8), (255, 0, 0)), model.meta, 8)
    blue = to_tensor(Image.new("RGB", (8, 8), (0, 0, 255)), model.meta, 8)
    probs = model.run(np.concatenate([red, blue]))
    assert probs.shape == (2, 3) and list(probs.argmax(axis=1)) == [0, 2], probs


# --- warm and run ------------------------------------------------------------------------


def test_warm_runs_and_returns_total_milliseconds(tiny_model):
    ms = Model.load(tiny_model(metadata=PLAIN)).warm(runs=2)
    assert isinstance(ms, float) and ms > 0, ms


def test_warm_uses_the_fixed_size_of_a_fixed_model(tiny_model):
    model = Model.load(tiny_model(layout="NHWC", size=32, batch=1, metadata=PLAIN))
    assert model.warm(runs=1) > 0


def test_logits_output_gets_softmax(tiny_model):
    model = Model.load(tiny_model(metadata=PLAIN))
    tensor = to_tensor(Image.new("RGB", (8, 8), (200, 100, 0)), model.meta, 8)
    probs = model.run(tensor)
    logits = model.session.run(None, {"image": tensor})[0]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert probs.dtype == np.float32 and np.allclose(probs, expected, atol=1e-6), (probs, expected)


def test_probabilities_output_is_not_softmaxed_again(tiny_model):
    path = tiny_model(output="probabilities", metadata={**PLAIN, "output": "probabilities"})
    model = Model.load(path)
    tensor = to_tensor(Image.new("RGB", (8, 8), (200, 100, 0)), model.meta, 8)
    raw = model.session.run(None, {"image": tensor})[0]
    probs = model.run(tensor)
    assert np.array_equal(probs, raw), (probs, raw)


def test_softmax_is_stable_for_huge_logits():
    probs = softmax(np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32))
    assert np.isfinite(probs).all(), probs
    assert np.allclose(probs.sum(axis=1), 1.0) and probs[0, 0] > probs[0, 1] > probs[0, 2], probs


def test_ort_failure_becomes_a_one_line_inference_error(tiny_model):
    model = Model.load(tiny_model(layout="NHWC", size=32, batch=1, metadata=PLAIN))
    with pytest.raises(InferenceError) as err:
        model.run(np.zeros((1, 16, 16, 3), dtype=np.float32))
    assert err.value.status_code == 500 and "\n" not in err.value.message, err.value.message


# --- top_k -------------------------------------------------------------------------------


@pytest.fixture
def five_class(tiny_model):
    """top_k reads only the labels, so relabel a loaded model with five classes."""
    model = Model.load(tiny_model(metadata=PLAIN))
    model.num_classes = 5
    model.meta = dataclasses.replace(model.meta, labels=tuple("abcde"))
    return model


def test_top_k_is_sorted_by_score_descending(five_class):
    preds = five_class.top_k(np.array([0.1, 0.4, 0.05, 0.3, 0.15], dtype=np.float32), 3)
    assert [p.label for p in preds] == ["b", "d", "e"], preds
    assert preds[0] == Prediction(index=1, label="b", score=pytest.approx(0.4)), preds[0]


def test_top_k_larger_than_class_count_is_clipped(five_class):
    preds = five_class.top_k(np.array([0.1, 0.4, 0.05, 0.3, 0.15], dtype=np.float32), 50)
    assert [p.index for p in preds] == [1, 3, 4, 0, 2], preds


def test_top_k_breaks_ties_by_lower_index(five_class):
    preds = five_class.top_k(np.array([0.2, 0.2, 0.2, 0.2, 0.2], dtype=np.float32), 2)
    assert [p.index for p in preds] == [0, 1], preds


@pytest.mark.parametrize("k", [1, 2, 3, 5, 17, 100, 999, 1000])
def test_equal_scores_are_ordered_by_ascending_index_for_every_top_k(five_class, k):
    # argpartition alone keeps an arbitrary subset of the scores tied at the cut
    row = np.zeros(1000, dtype=np.float32)
    row[[700, 300]] = 0.5
    five_class.meta = dataclasses.replace(five_class.meta, labels=tuple(map(str, range(1000))))
    got = [p.index for p in five_class.top_k(row, k)]
    want = ([300, 700] + [i for i in range(1000) if i not in (300, 700)])[:k]
    assert got == want, (k, got[:10])


def test_top_k_keeps_nan_scores_last(five_class):
    preds = five_class.top_k(np.array([np.nan, 0.5, np.nan, 0.2, 0.1], dtype=np.float32), 3)
    assert [p.index for p in preds] == [1, 3, 4], preds


def test_sigmoid_output_gives_independent_scores(tiny_model):
    model = Model.load(tiny_model(metadata={**PLAIN, "output": "sigmoid"}))
    tensor = to_tensor(Image.new("RGB", (8, 8), (200, 100, 0)), model.meta, 8)
    logits = model.session.run(None, {"image": tensor})[0]
    assert np.allclose(model.run(tensor), 1 / (1 + np.exp(-logits)), atol=1e-6), logits


def test_top_k_accepts_a_batch_row_of_shape_1_by_k(five_class):
    preds = five_class.top_k(np.array([[0.1, 0.4, 0.05, 0.3, 0.15]], dtype=np.float32), 1)
    assert [p.label for p in preds] == ["b"], preds


def test_prediction_to_dict_is_json_ready():
    got = Prediction(index=3, label="red", score=0.123456789).to_dict()
    assert got == {"index": 3, "label": "red", "score": 0.123457}, got


def test_a_described_logits_model_raises_no_doubt(tiny_model):
    assert Model.load(tiny_model(metadata=PLAIN)).doubts() == []


def test_probabilities_described_as_logits_raise_a_doubt(tiny_model):
    model = Model.load(tiny_model(output="probabilities", metadata=PLAIN))
    events = [event for event, _message in model.doubts()]
    assert events == ["model_output_looks_like_probabilities"], events


def test_a_dynamic_model_described_non_square_takes_only_its_own_size(tiny_model):
    model = Model.load(tiny_model(metadata={**PLAIN, "input_size": [32, 128]}))
    assert model.size_for(None) == (32, 128)
    with pytest.raises(EdgeserveError, match="it takes 32x128 images, omit img_size"):
        model.size_for(64)
