"""Start and stop server processes in their own process group; read their memory and CPU."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """A server we started: its URL, process (group leader) and log file."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: tempfile.TemporaryDirectory[str] = field(repr=False)
    ready_seconds: float = 0.0  # from the start of the process to the first 200 on ready_path

    def group(self) -> list[int]:
        """Live pids of the server's process group (main process plus its workers)."""
        return group_pids(self.process.pid)

    def peak_rss_mb(self) -> dict[str, float]:
        """VmHWM (peak resident set) per process of the group, and their sum, in MB."""
        return group_peak_rss_mb(self.process.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the live processes of the group."""
        return sum(_cpu_seconds(pid) for pid in self.group())

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat_fields(int(entry.name))
        if stat is not None and int(stat[2]) == pgid:
            pids.append(int(entry.name))
    return sorted(pids)


def group_peak_rss_mb(pgid: int) -> dict[str, float]:
    """VmHWM (peak resident set) per process of a process group, and their sum, in MB."""
    per_pid = {str(pid): _status_kb(pid, "VmHWM") / 1024 for pid in group_pids(pgid)}
    per_pid = {pid: round(mb, 1) for pid, mb in per_pid.items() if mb > 0}
    return {"total": round(sum(per_pid.values()), 1), **per_pid}


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp is [2])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _cpu_seconds(pid: int) -> float:
    stat = _stat_fields(pid)
    if stat is None:
        return 0.0
    return (int(stat[11]) + int(stat[12])) / CLOCK_TICKS  # utime + stime


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def start_server(
    name: str,
    argv: list[str],
    env: dict[str, str],
    ready_path: str,
    *,
    cwd: Path = REPO,
    timeout: float = 90.0,
) -> ServerProcess:
    """Start `argv` in `cwd` with PORT set, wait until GET ready_path answers 200."""
    port = free_port()
    workdir = tempfile.TemporaryDirectory(prefix=f"edgeserve-bench-{name}-")
    log_path = Path(workdir.name) / "server.log"
    full_env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    full_env.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "PYTHONUNBUFFERED": "1",  # as in the Dockerfile: every log line written at once
            "PROMETHEUS_MULTIPROC_DIR": str(Path(workdir.name) / "metrics"),
            "STATE_PATH": str(Path(workdir.name) / "state.json"),
        }
    )
    full_env.update(env)
    started = time.monotonic()
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we measure and stop all of it
        )
    server = ServerProcess(name, f"http://127.0.0.1:{port}", process, log_path, workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = server.log_tail()
            stop_server(server)
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(server.url + ready_path, timeout=1).status_code == 200:
                server.ready_seconds = time.monotonic() - started
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    tail = server.log_tail()
    stop_server(server)
    raise RuntimeError(f"{name} not ready after {timeout:.0f} s:\n{tail}")


def stop_server(server: ServerProcess, timeout: float = 20.0) -> None:
    """SIGTERM the group, SIGKILL it if it lingers, then remove its temporary folder."""
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(5)
        except ProcessLookupError:
            pass
    if group_pids(server.process.pid):  # a worker outlived its main process
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
    server.workdir.cleanup()


def edgeserve_argv() -> list[str]:
    return [sys.executable, "-m", "edgeserve", "serve"]


def fastapi_argv() -> list[str]:
    return [sys.executable, "-m", "benchmarks.fastapi_baseline"]


def sanic_argv() -> list[str]:
    return [sys.executable, "-m", "benchmarks.sanic_baseline"]
