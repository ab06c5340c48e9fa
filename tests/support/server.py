"""Start a real `edgeserve serve` process on a free port, for tests that need a real server."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx

from edgeserve.settings import Settings, env_name
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token-0123456789"


def tls_context(env: dict[str, str]) -> ssl.SSLContext | bool:
    """What a client of a server started with `env` verifies it with (True: plain HTTP)."""
    if not env.get("EDGESERVE_CACERT"):
        return True
    context = ssl.create_default_context(cafile=env["EDGESERVE_CACERT"])
    if env.get("EDGESERVE_CERT"):
        context.load_cert_chain(env["EDGESERVE_CERT"], env.get("EDGESERVE_KEY"))
    return context


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    output_path: Path
    env: dict[str, str]

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **{"verify": self.verify(), **kwargs})

    def admin(self, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.env.get('ADMIN_TOKEN') or ADMIN_TOKEN}"}
        return self.client(headers=headers, **kwargs)

    def verify(self) -> ssl.SSLContext | bool:
        """Over HTTPS, trust the CA the CLI is told of (EDGESERVE_CACERT in the server's
        environment, which the server itself ignores) and present EDGESERVE_CERT if set."""
        return tls_context(self.env)


# Settings a developer's shell may hold that would change what a test server does.
SERVER_VARIABLES = {env_name(f.name) for f in fields(Settings)}


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
    env.update(
        {
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "info",
            "RATE_LIMIT_RPS": "0",
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "MODEL_VA_PATH": str(REPO / "models" / "vA.onnx"),
            "MODEL_VB_PATH": str(REPO / "models" / "vB.onnx"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def start_server(
    env: dict[str, str],
    *,
    command: list[str] | None = None,
    cwd: Path = REPO,
    port: int | None = None,
    wait_ready: bool = True,
) -> Server:
    """Start `command` (default `python -m edgeserve serve`); wait for /ready.

    Without `port` the server gets a free one through PORT; with it, `command` must say it."""
    if port is None:
        port = free_port()
        env = {**env, "PORT": str(port)}
    output = Path(tempfile.mkstemp(prefix="edgeserve-test-", suffix=".log")[1])
    with open(output, "w") as sink:
        process = subprocess.Popen(
            command or [sys.executable, "-m", "edgeserve", "serve"],
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    scheme = "https" if env.get("TLS_CERT_FILE") else "http"
    server = Server(f"{scheme}://127.0.0.1:{port}", process, output, env)
    if wait_ready:
        wait_until_ready(server)
    return server


def workers_ready(server: Server) -> bool:
    """With WORKERS > 1 one worker's /ready says nothing of the others: each logs models_ready
    (at the info level the tests run at), so wait for all of them."""
    workers = int(server.env.get("WORKERS", "1"))
    json_info = server.env.get("LOG_LEVEL", "info") in ("debug", "info") and server.env.get(
        "LOG_FORMAT", "json"
    ) in ("", "json")
    if workers == 1 or not json_info:
        return True
    return server.output().count('"models_ready"') >= workers


def wait_for_200(
    name: str,
    url: str,
    process: subprocess.Popen[Any],
    output: Callable[[], str],
    timeout: float,
    settled: Callable[[], bool] = lambda: True,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Until GET `url` answers 200 and `settled()` holds; a process that exits fails at once."""

    def status() -> int | str:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{output()[-4000:]}")
        try:
            answered = httpx.get(url, timeout=1, verify=verify).status_code
        except httpx.TransportError as error:
            return type(error).__name__
        return answered if answered != 200 or settled() else "200, still settling"

    wait_until(
        f"{url} to answer 200",
        status,
        lambda answered: answered == 200,
        timeout=timeout,
        interval=0.1,
        context=lambda: output()[-4000:],
    )


def wait_until_ready(server: Server, timeout: float = 60.0) -> None:
    try:
        wait_for_200(
            "edgeserve",
            server.url + "/ready",
            server.process,
            server.output,
            timeout,
            settled=lambda: workers_ready(server),
            verify=server.verify(),
        )
    except AssertionError:
        stop_server(server)
        raise


def stop_server(server: Server, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, sig)
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(5)
        except ProcessLookupError:
            pass
    return server.process.returncode


@contextmanager
def running_server(**overrides: str) -> Iterator[Server]:
    server = start_server(base_env(**overrides))
    try:
        yield server
    finally:
        stop_server(server)


def refused_start_lines(env: dict[str, str]) -> list[str]:
    """Start `edgeserve serve` with `env` (and nothing else) and expect it to refuse: exit 2,
    no traceback. Answers the non-empty lines it printed on stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "edgeserve", "serve", "--port", "0"],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return [line for line in result.stderr.splitlines() if line.strip()]


def pushed_only_env(root: Path) -> dict[str, str]:
    """Settings of a server with only A at start and an empty MODEL_DIR under `root`: every
    other model it serves must be pushed to it (issue 23)."""
    (root / "empty").mkdir(parents=True, exist_ok=True)
    return {
        "MODEL_VA_PATH": str(REPO / "models" / "vA.onnx"),
        "MODEL_VB_PATH": "",
        "MODEL_DIR": str(root / "empty"),
        "STATE_PATH": str(root / "state" / "state.json"),
        "WARMUP_RUNS": "0",
    }
