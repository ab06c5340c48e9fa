"""edgeserve admin push / load --upload against a real server whose MODEL_DIR is empty."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from edgeserve.inference.model import file_model_version
from tests.cli.helpers import admin_args
from tests.support.server import REPO, Server, pushed_only_env, running_server


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory) -> Iterator[Server]:
    """Only A at start; MODEL_DIR holds nothing, so every other model must be pushed."""
    env = pushed_only_env(tmp_path_factory.mktemp("push"))
    with running_server(**env) as server:
        yield server


@pytest.fixture
def laptop_model(tmp_path):
    """A model on the operator's machine, with a sidecar beside it."""
    model = tmp_path / "candidate.onnx"
    shutil.copy(REPO / "models" / "vB.onnx", model)
    model.with_suffix(".json").write_text('{"interpolation": "nearest"}')
    return model


def test_push_prints_the_version_the_file_has_here(run, bare_server, laptop_model):
    result = run("admin", "push", str(laptop_model), *admin_args(bare_server.url))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == file_model_version(laptop_model)[:12], result.output


def test_push_takes_another_sidecar_with_the_sidecar_option(run, bare_server, laptop_model):
    other = laptop_model.parent / "other.json"
    other.write_text('{"interpolation": "bicubic"}')
    result = run(
        "admin", "push", str(laptop_model), "--sidecar", str(other), *admin_args(bare_server.url)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() != file_model_version(laptop_model)[:12], result.output


def test_load_upload_pushes_then_serves_the_file_in_the_slot(run, bare_server, laptop_model):
    result = run("admin", "load", "B", "--upload", str(laptop_model), *admin_args(bare_server.url))
    assert result.exit_code == 0, result.output
    with bare_server.admin() as admin:
        served = admin.get("/admin/config").json()["models"]["B"]
    assert served["version"] == file_model_version(laptop_model)[:12], served
    assert served["name"] == "candidate", served


def test_load_needs_either_a_path_or_upload(run, bare_server, laptop_model):
    both = run("admin", "load", "B", "vB.onnx", "--upload", str(laptop_model))
    neither = run("admin", "load", "B")
    assert both.exit_code == neither.exit_code == 2, (both.output, neither.output)
    assert "either PATH" in both.stderr and "either PATH" in neither.stderr


def test_push_of_a_missing_file_is_one_line_naming_it(run, bare_server, tmp_path):
    result = run("admin", "push", str(tmp_path / "nope.onnx"), *admin_args(bare_server.url))
    assert result.exit_code == 1, result.output
    assert "nope.onnx" in result.stderr and "Traceback" not in result.output


def test_models_gc_dry_run_shows_what_is_kept_and_removes_nothing(run, bare_server):
    result = run("models", "gc", "--dry-run", "--json", *admin_args(bare_server.url))
    assert result.exit_code == 0, result.output
    (instance,) = json.loads(result.stdout)["instances"]
    assert instance["result"]["dry_run"] is True, instance
    assert {"A"} <= {k["why"] for k in instance["result"]["kept"]}, instance
