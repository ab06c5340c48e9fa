"""edgeserve models keygen / sign, and admin push sending the signature, against a server that
trusts only the key made here."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeserve.inference.model import file_model_version
from edgeserve.inference.signature import sign, signature_path
from tests.cli.helpers import admin_args
from tests.support.server import REPO, Server, pushed_only_env, running_server


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    """The prefix of a key pair made by `edgeserve models keygen`."""
    from typer.testing import CliRunner

    from edgeserve.cli import app

    prefix = tmp_path_factory.mktemp("keys") / "release"
    result = CliRunner().invoke(app, ["models", "keygen", "--out", str(prefix)])
    assert result.exit_code == 0, result.output
    return prefix


@pytest.fixture(scope="module")
def trusting_server(tmp_path_factory, keys) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("trusting")
    model_a = root / "vA.onnx"
    shutil.copy(REPO / "models" / "vA.onnx", model_a)
    private = (keys.parent / "release.key").read_bytes()
    signature_path(model_a).write_text(sign(private, file_model_version(model_a)))
    env = pushed_only_env(root) | {
        "MODEL_VA_PATH": str(model_a),
        "MODEL_TRUSTED_KEYS": str(keys.parent / "release.pub"),
    }
    with running_server(**env) as server:
        yield server


@pytest.fixture
def candidate(tmp_path) -> Path:
    model = tmp_path / "candidate.onnx"
    shutil.copy(REPO / "models" / "vB.onnx", model)
    return model


def test_keygen_writes_a_private_key_only_its_owner_reads(keys):
    assert (keys.parent / "release.key").stat().st_mode & 0o077 == 0
    assert (keys.parent / "release.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_never_overwrites_a_key(run, keys):
    result = run("models", "keygen", "--out", str(keys))
    assert result.exit_code == 2, result.output
    assert "already exists" in result.stderr


def test_a_model_signed_with_sign_is_pushed_with_its_signature_and_loads(
    run, trusting_server, keys, candidate
):
    signed = run("models", "sign", str(candidate), "--key", str(keys.parent / "release.key"))
    assert signed.exit_code == 0, signed.output
    assert signature_path(candidate).is_file()
    result = run("admin", "load", "B", "--upload", str(candidate), *admin_args(trusting_server.url))
    assert result.exit_code == 0, result.output
    with trusting_server.admin() as admin:
        served = admin.get("/admin/config").json()["models"]["B"]
    assert served["version"] == file_model_version(candidate)[:12], served


def test_an_unsigned_push_fails_in_one_line_naming_the_code(run, trusting_server, candidate):
    result = run("admin", "push", str(candidate), *admin_args(trusting_server.url))
    assert result.exit_code == 1, result.output
    assert "model_unsigned" in result.stderr, result.stderr


def test_sign_with_a_public_key_says_it_needs_the_private_one(run, keys, candidate):
    result = run("models", "sign", str(candidate), "--key", str(keys.parent / "release.pub"))
    assert result.exit_code == 1, result.output
    assert "not an Ed25519 private key" in result.stderr, result.stderr
