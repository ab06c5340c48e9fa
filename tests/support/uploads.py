"""Pushing models to a test server (issue 23), no tests."""

from __future__ import annotations

import hashlib
import json

from tests.support.server import REPO, Server

MODEL_BYTES = (REPO / "models" / "vB.onnx").read_bytes()
SHA256 = hashlib.sha256(MODEL_BYTES).hexdigest()


def push_described(server: Server, n: int) -> str:
    """Push vB's bytes with a sidecar of their own (`pad_value` n): a version of their own,
    which this answers (all 64 characters)."""
    sidecar = json.dumps({"pad_value": n}).encode()
    query = {"name": f"m{n}.onnx", "sha256": SHA256, "sidecar_bytes": str(len(sidecar))}
    with server.admin() as admin:
        r = admin.post("/admin/uploads", params=query, content=sidecar + MODEL_BYTES)
    assert r.status_code == 201, r.text
    return r.json()["full_version"]


def push_and_load_many(server: Server, count: int) -> dict:
    """`count` versions pushed and loaded into B, promoting every tenth load but the last so
    that A, B and the previous A end up three versions; answers the final config."""
    with server.admin() as admin:
        for n in range(count):
            r = admin.post("/admin/models/B", json={"version": push_described(server, n)})
            assert r.status_code == 200, r.text
            if n % 10 == 8:
                assert admin.post("/admin/promote").status_code == 200
        return admin.get("/admin/config").json()
