"""CLI tests: typer's CliRunner in-process, against real `edgeserve serve` processes."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner, Result

from edgeserve.cli import app
from tests.support.models import save_fails_on_real_images
from tests.support.server import (
    REPO,
    Server,
    base_env,
    free_port,
    start_server,
    stop_server,
    wait_until_ready,
)

# The environment a command sees: nothing leaks in from the developer's shell.
CLEAN_ENV: dict[str, str | None] = {
    "ADMIN_TOKEN": None,
    "EDGESERVE_URL": None,
    "EDGESERVE_CACERT": None,
    "EDGESERVE_CERT": None,
    "EDGESERVE_KEY": None,
    "COLUMNS": "200",
    "MODEL_VA_PATH": str(REPO / "models" / "vA.onnx"),
    "MODEL_VB_PATH": str(REPO / "models" / "vB.onnx"),
}
DEFAULT_CONFIG = {
    "ab_weight_a": 1.0,
    "ab_weight_b": 0.0,
    "shadow_enabled": False,
    "canary_enabled": False,
    "sticky_cookie": True,
}

Run = Callable[..., Result]


@pytest.fixture
def run() -> Run:
    """run("admin", "config", "get", env={...}, input=...) -> Result with stdout and stderr."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str | None] | None = None, input: str | None = None):
        return runner.invoke(app, list(args), env={**CLEAN_ENV, **(env or {})}, input=input)

    return invoke


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> os.PathLike:
    """Models folder of the mutable server: the demo models, vC (vB's bytes described another
    way: another version), and a broken B."""
    folder = tmp_path_factory.mktemp("models")
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, folder / name)
    shutil.copy(REPO / "models" / "vB.onnx", folder / "vC.onnx")
    (folder / "vC.json").write_text('{"interpolation": "bicubic"}')
    save_fails_on_real_images(folder / "broken.onnx")
    return folder


@pytest.fixture(scope="session")
def servers(model_dir) -> Iterator[dict[str, Server]]:
    """All servers of the suite, started at once (each takes a second or two to start)."""
    envs = {
        "server": base_env(),
        "twin": base_env(),
        "no_admin": base_env(ADMIN_TOKEN=""),
        "mutable": base_env(
            MODEL_VA_PATH=str(model_dir / "vA.onnx"),
            MODEL_VB_PATH=str(model_dir / "vB.onnx"),
            CANARY_MIN_SAMPLES="5",
            STICKY_COOKIE="false",
        ),
    }
    started: dict[str, Server] = {}
    try:
        for name, env in envs.items():
            started[name] = start_server(env, wait_ready=False)
        for server in started.values():
            wait_until_ready(server)
        yield started
    finally:
        for server in started.values():  # signal all first so they shut down in parallel
            if server.process.poll() is None:
                os.killpg(server.process.pid, signal.SIGTERM)
        for server in started.values():
            stop_server(server)


@pytest.fixture(scope="session")
def server(servers) -> Server:
    """Read-only: default settings, all traffic to A, admin on. No test may change it."""
    return servers["server"]


@pytest.fixture(scope="session")
def twin(servers) -> Server:
    """A second read-only server identical to `server`: a fleet without drift."""
    return servers["twin"]


@pytest.fixture(scope="session")
def no_admin_server(servers) -> Server:
    """ADMIN_TOKEN empty: the admin API answers 403."""
    return servers["no_admin"]


@pytest.fixture
def mutable(servers) -> Iterator[Server]:
    """A server tests may change; its models and config are put back after each test."""
    server = servers["mutable"]
    yield server
    with server.admin() as admin:
        models = admin.get("/admin/config").json()["models"]
        for slot, name in (("A", "vA"), ("B", "vB")):
            if models.get(slot, {}).get("name") != name:
                loaded = admin.post(f"/admin/models/{slot}", json={"path": f"{name}.onnx"})
                assert loaded.status_code == 200, loaded.text
        reset = admin.post("/admin/config", json=DEFAULT_CONFIG)
        assert reset.status_code == 200, reset.text


@pytest.fixture(scope="session")
def down_url() -> str:
    """A URL on which nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
