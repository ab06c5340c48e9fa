"""A model file's declared description, read without a session, is the one its load builds."""

from __future__ import annotations

import shutil

import pytest

from edgeserve.inference.declared import declared_meta
from edgeserve.inference.model import Model
from tests.support.pipelines import PIPELINES, save_probe_model
from tests.support.server import REPO


@pytest.mark.parametrize("sidecar", [True, False], ids=["with sidecar", "without sidecar"])
def test_declared_labels_are_the_labels_a_load_gives(tmp_path, sidecar):
    path = save_probe_model(tmp_path / "probe.onnx", PIPELINES["timm"])
    if not sidecar:
        path.with_suffix(".json").unlink()
    assert declared_meta(path) == Model.load(path).meta


def test_labels_kept_in_the_models_own_metadata_are_declared(tmp_path):
    path = shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "vA.onnx")
    assert declared_meta(path).labels == Model.load(path).meta.labels


def test_a_file_that_is_not_a_model_declares_nothing(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx model")
    assert declared_meta(junk) is None
