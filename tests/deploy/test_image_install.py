"""The Dockerfile's install steps, run for real: no Docker engine here, so the same commands
go into a fresh venv and the server is started from it, as the image would start it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.images import image_b64
from tests.support.server import REPO, base_env, start_server, stop_server


def run(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_image_install_steps_give_a_working_server(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    # What the builder stage copies, and nothing else.
    for name in ("requirements.lock", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "edgeserve", source / "edgeserve", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=source)
    pip = [
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-cache-dir",
        "--no-deps",
    ]
    run(*pip, "-r", "requirements.lock", cwd=source)
    run(*pip, "--no-build-isolation", ".", cwd=source)
    run(venv / "bin" / "edgeserve", "--help", cwd=source)

    env = base_env(MODEL_DIR=str(REPO / "models"))
    server = start_server(env, command=[str(venv / "bin" / "edgeserve"), "serve"], cwd=tmp_path)
    try:
        r = httpx.post(server.url + "/v1/infer", json={"image_b64": image_b64((0, 0, 255))})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"][0]["label"] == "blue"
    finally:
        stop_server(server)
