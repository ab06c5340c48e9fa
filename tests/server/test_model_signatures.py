"""MODEL_TRUSTED_KEYS (issue 23): a model loads only with a detached Ed25519 signature over its
version that a listed key verifies; unsigned is 422 model_unsigned, any other signature 422
model_signature_invalid, and a refused upload keeps nothing."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeserve.inference.model import file_model_version
from edgeserve.inference.signature import new_key_pair, sign, signature_path
from edgeserve.setting_values import SettingsError
from edgeserve.settings import load_settings
from tests.support.server import REPO, Server, pushed_only_env, running_server

MODEL_BYTES = (REPO / "models" / "vB.onnx").read_bytes()
SHA256 = hashlib.sha256(MODEL_BYTES).hexdigest()
VERSION = file_model_version(REPO / "models" / "vB.onnx")
TRUSTED_PRIVATE, TRUSTED_PUBLIC = new_key_pair()
OTHER_PRIVATE, _ = new_key_pair()


def push(server: Server, name: str, signature: str | None = None):
    query = {"name": name, "sha256": SHA256}
    if signature is not None:
        query["signature"] = signature
    with server.admin() as admin:
        return admin.post("/admin/uploads", params=query, content=MODEL_BYTES)


def kept_names(server: Server) -> list[str]:
    store = Path(server.env["STATE_PATH"]).parent / "models"
    return sorted(p.name for p in store.glob("*/*.onnx"))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """Trusts one key; A is signed by it; MODEL_DIR holds an unsigned model."""
    root = tmp_path_factory.mktemp("signed")
    env = pushed_only_env(root)
    (root / "trusted.pub").write_bytes(TRUSTED_PUBLIC)
    model_a = root / "vA.onnx"
    shutil.copy(REPO / "models" / "vA.onnx", model_a)
    signature_path(model_a).write_text(sign(TRUSTED_PRIVATE, file_model_version(model_a)))
    shutil.copy(REPO / "models" / "vB.onnx", Path(env["MODEL_DIR"]) / "unsigned.onnx")
    env |= {"MODEL_VA_PATH": str(model_a), "MODEL_TRUSTED_KEYS": str(root / "trusted.pub")}
    with running_server(**env) as server:
        yield server


def test_an_unsigned_upload_is_refused_with_model_unsigned_and_not_kept(server):
    r = push(server, "plain.onnx")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "model_unsigned", r.text
    assert "plain.onnx" not in kept_names(server)


def test_an_upload_signed_by_another_key_is_refused_with_model_signature_invalid(server):
    r = push(server, "stranger.onnx", sign(OTHER_PRIVATE, VERSION))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "model_signature_invalid", r.text
    assert "stranger.onnx" not in kept_names(server)


def test_a_trusted_signature_over_another_version_is_refused(server):
    r = push(
        server, "moved.onnx", sign(TRUSTED_PRIVATE, file_model_version(REPO / "models" / "vA.onnx"))
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "model_signature_invalid", r.text


def test_a_model_signed_by_a_trusted_key_is_kept_and_loads(server):
    r = push(server, "signed.onnx", sign(TRUSTED_PRIVATE, VERSION))
    assert r.status_code == 201, r.text
    with server.admin() as admin:
        loaded = admin.post("/admin/models/B", json={"version": r.json()["version"]})
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["models"]["B"]["version"] == VERSION[:12], loaded.text


def test_an_unsigned_file_in_model_dir_does_not_load(server):
    with server.admin() as admin:
        before = admin.get("/admin/config").json()["models"]
        r = admin.post("/admin/models/A", json={"path": "unsigned.onnx"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "model_unsigned", r.text
        assert admin.get("/admin/config").json()["models"] == before


def test_a_trusted_keys_file_that_is_not_an_ed25519_public_key_stops_the_start(tmp_path):
    not_a_key = tmp_path / "trusted.pub"
    not_a_key.write_bytes(TRUSTED_PRIVATE)  # the private half: a common mistake
    with pytest.raises(SettingsError, match=r"MODEL_TRUSTED_KEYS=.*Ed25519"):
        load_settings({"MODEL_TRUSTED_KEYS": str(not_a_key)})
