"""Each k6 script passes its thresholds and checks against a real `edgeserve serve` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
K6_DIR = REPO_ROOT / "load" / "k6"
SCRIPTS = ["healthz.js", "infer.js", "ab.js"]
READY_TIMEOUT_S = 30.0
K6_TIMEOUT_S = 60
# Variables a developer's shell may hold that would change what this server does.
SERVER_ENV_TO_CLEAR = (
    "ADMIN_TOKEN",
    "STATE_PATH",
    "MODEL_VA_PATH",
    "MODEL_VB_PATH",
    "MODEL_DIR",
    "WORKERS",
    "AB_WEIGHT_A",
    "SHADOW_ENABLED",
    "CANARY_ENABLED",
    "STICKY_COOKIE",
    "STICKY_COOKIE_NAME",
    "MAX_BODY_BYTES",
    "MAX_IMAGE_PIXELS",
    "RATE_LIMIT_BURST",
    "LOG_FORMAT",
)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and its Sanic workers: they share the process group we started."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    probe = subprocess.run(
        [sys.executable, "-m", "edgeserve", "serve", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        last_line = ((probe.stderr or probe.stdout).strip().splitlines() or ["no output"])[-1]
        pytest.skip(
            f"server not available yet: `python -m edgeserve serve --help` failed: {last_line}"
        )
    workdir = tmp_path_factory.mktemp("k6-live-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_TO_CLEAR}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        RATE_LIMIT_RPS="0",
        AB_WEIGHT_B="0.5",
        LOG_LEVEL="warning",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
    )
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "edgeserve", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Server(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not is_ready(running.url):
            if process.poll() is not None:
                pytest.fail(
                    f"server exited with {process.returncode} before /ready:\n{running.output()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after {READY_TIMEOUT_S:.0f} s:\n{running.output()}")
            time.sleep(0.2)
        yield running
    finally:
        stop(process)


@dataclass
class K6Run:
    script: str
    returncode: int
    output: str
    summary: dict[str, Any]


@pytest.fixture(scope="module", params=SCRIPTS)
def k6_run(
    request: pytest.FixtureRequest,
    server: Server,
    k6_bin: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> K6Run:
    script: str = request.param
    summary_path = tmp_path_factory.mktemp("k6-live") / f"{Path(script).stem}.json"
    result = subprocess.run(
        [
            k6_bin,
            "run",
            "--quiet",
            "--no-color",
            "-e",
            f"BASE_URL={server.url}",
            "-e",
            "VUS=2",
            "-e",
            "DURATION=3s",
            "--summary-export",
            str(summary_path),
            str(K6_DIR / script),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=K6_TIMEOUT_S,
    )
    output = (result.stdout + result.stderr)[-6000:]
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if server.process.poll() is not None:
        pytest.fail(f"server died during {script}:\n{server.output()}")
    return K6Run(script, result.returncode, output, summary)


def test_k6_script_passes_its_thresholds(k6_run: K6Run) -> None:
    # k6 exits 99 when a threshold is crossed.
    assert k6_run.returncode == 0, f"{k6_run.script} exited {k6_run.returncode}:\n{k6_run.output}"


def test_k6_script_passes_every_check(k6_run: K6Run) -> None:
    checks = k6_run.summary.get("metrics", {}).get("checks")
    assert checks, f"{k6_run.script}: no checks in the summary:\n{k6_run.output}"
    assert checks["passes"] > 0 and checks["fails"] == 0, (checks, k6_run.output)
