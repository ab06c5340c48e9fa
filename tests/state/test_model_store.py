"""Content-addressed model copies: the bytes a slot serves cannot change under it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgeserve.errors import ModelLoadError, StateUnavailable
from edgeserve.inference.model import Model, file_model_version
from edgeserve.state.model_store import ModelStore
from edgeserve.state.schema import SlotModel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def source(tmp_path) -> Path:
    folder = tmp_path / "incoming"
    folder.mkdir()
    shutil.copy(REPO / "models" / "vB.onnx", folder / "vB.onnx")
    return folder / "vB.onnx"


def test_a_kept_model_is_a_read_only_copy_named_by_its_version(tmp_path, source):
    kept = ModelStore(tmp_path / "models").keep(source)
    path = Path(kept.path)
    assert kept.version == file_model_version(source)
    assert path == tmp_path / "models" / kept.version / "vB.onnx"
    assert path.stat().st_ino != source.stat().st_ino
    assert path.stat().st_mode & 0o222 == 0  # read-only for everyone


def test_overwriting_the_source_leaves_the_kept_bytes(tmp_path, source):
    kept = ModelStore(tmp_path / "models").keep(source)
    shutil.copy(REPO / "models" / "vA.onnx", source)  # in place, as cp does
    assert file_model_version(Path(kept.path)) == kept.version != file_model_version(source)


def test_the_sidecar_is_kept_beside_the_model(tmp_path, source):
    source.with_suffix(".json").write_text('{"labels": ["a", "b"]}')
    kept = ModelStore(tmp_path / "models").keep(source)
    assert Path(kept.path).with_suffix(".json").read_text() == '{"labels": ["a", "b"]}'


def test_the_same_bytes_with_another_sidecar_are_another_version_kept_apart(tmp_path, source):
    store = ModelStore(tmp_path / "models")
    first = store.keep(source)
    source.with_suffix(".json").write_text('{"labels": ["b", "a"]}')
    second = store.keep(source)
    assert first.version != second.version
    assert sorted(p.name for p in Path(first.path).parent.iterdir()) == ["vB.onnx"]
    assert Path(second.path).with_suffix(".json").read_text() == '{"labels": ["b", "a"]}'


def test_keeping_the_same_version_again_names_the_same_copy(tmp_path, source):
    store = ModelStore(tmp_path / "models")
    source.with_suffix(".json").write_text('{"labels": ["a", "b"]}')
    first = store.keep(source)
    source.with_suffix(".json").write_text('{ "labels" : ["a", "b"] }')  # the same description
    assert store.keep(source) == first


def test_an_unwritable_store_refuses_instead_of_naming_the_source(tmp_path, source):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be: fails even for root")
    with pytest.raises(StateUnavailable) as caught:
        ModelStore(blocked / "models").keep(source)
    assert caught.value.status_code == 503, caught.value.message
    assert "vB.onnx" in caught.value.message and "writable" in caught.value.message


def test_a_model_named_by_its_bytes_is_content_addressed_and_its_original_is_not(tmp_path, source):
    kept = ModelStore(tmp_path / "models").keep(source)
    assert kept.content_addressed
    assert not SlotModel(str(source), kept.version).content_addressed


def test_another_hosts_path_is_found_in_this_hosts_copy(tmp_path, source):
    store = ModelStore(tmp_path / "models")
    kept = store.keep(source)
    elsewhere = kept.__class__(f"/other-host/models/{kept.version}/vB.onnx", kept.version)
    assert store.locate(elsewhere) == Path(kept.path)
    assert store.locate(elsewhere.__class__("/nowhere/vC.onnx", "d" * 64)) is None


def test_a_model_whose_bytes_changed_is_not_loaded_under_its_old_version(source):
    expected = file_model_version(source)
    shutil.copy(REPO / "models" / "vA.onnx", source)
    with pytest.raises(ModelLoadError) as caught:
        Model.load(source, expected_sha256=expected)
    assert caught.value.code == "model_changed", caught.value.message


def test_a_model_whose_sidecar_changed_is_not_loaded_under_its_old_version(source):
    expected = file_model_version(source)
    source.with_suffix(".json").write_text('{"output": "probabilities"}')
    with pytest.raises(ModelLoadError) as caught:
        Model.load(source, expected_sha256=expected)
    assert caught.value.code == "model_changed", caught.value.message
