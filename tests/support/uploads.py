"""Pushing models to a test server (issue 23), and loading them slowly, no tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx

from benchmarks.procs import group_pids
from tests.support.hazards import save_looping
from tests.support.server import REPO, Server

MODEL_BYTES = (REPO / "models" / "vB.onnx").read_bytes()
SHA256 = hashlib.sha256(MODEL_BYTES).hexdigest()
SLOW_WARM_UP_STEPS = 5e5
"""Under a second of one core per run on the black warm-up input: a load of a few seconds."""


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


def save_slow_to_load(path: Path) -> Path:
    """vA whose warm-up (WARMUP_RUNS >= 1) and first run take seconds: a load to race."""
    return save_looping(path, SLOW_WARM_UP_STEPS, "slow_to_load", on_black=True)


def push_file(server: Server, model: Path) -> str:
    """Push `model` (no sidecar); answers its full version."""
    body = model.read_bytes()
    query = {"name": model.name, "sha256": hashlib.sha256(body).hexdigest()}
    with server.admin() as admin:
        r = admin.post("/admin/uploads", params=query, content=body)
    assert r.status_code == 201, r.text
    return r.json()["full_version"]


def load_b(server: Server, version: str) -> httpx.Response:
    with server.admin() as admin:
        return admin.post("/admin/models/B", json={"version": version})


def admissions(server: Server) -> list[int]:
    """The server's model processes: with only A (served in-process), a load's admission."""
    return [
        pid
        for pid in group_pids(server.process.pid)
        if b"edgeserve.inference.sandbox" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def collect_now(server: Server) -> dict:
    """POST /admin/gc on a new connection: with WORKERS > 1 any worker may answer."""
    with server.admin() as admin:
        r = admin.post("/admin/gc", json={})
    assert r.status_code == 200, r.text
    return r.json()
