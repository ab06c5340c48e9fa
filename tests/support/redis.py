"""A real redis-server on a free port, for the state store and fleet tests (no tests here).

No persistence (`--save "" --appendonly no`): a restart comes back empty, as a Redis whose
data was lost would, unless a test saved a snapshot and restarts from it (`snapshot`,
`restart_from`), as a Redis restored from an older RDB file would. Missing redis-server skips
the test locally and fails it in CI (CI=true).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.server import free_port
from tests.support.waiting import wait_until

RDB_FILE = "dump.rdb"
"""Where SAVE writes in the server's folder, and what it loads at start."""


def require_redis_server() -> str:
    """redis-server's path; skip when it is missing, except in CI (CI=true), where that fails."""
    path = shutil.which("redis-server")
    if path:
        return path
    message = "redis-server is not on PATH (install it with: apt-get install redis-server)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


@dataclass
class RedisServer:
    binary: str
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.folder / "redis.log"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 10.0) -> None:
        """Start on the same port (empty: nothing is persisted) and wait for PING."""
        with open(self.log_path, "ab") as sink:
            self.process = subprocess.Popen(
                [
                    *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
                ],
                cwd=self.folder,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(
                f"redis-server on port {self.port} to answer PING",
                self.answers_ping,
                timeout=timeout,
                context=lambda: self.output()[-2000:],
            )
        except AssertionError:
            self.kill()
            raise

    def answers_ping(self) -> bool:
        """PING's answer; a redis-server that exited raises at once."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{self.output()[-2000:]}")
        return self.ping()

    def ping(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False

    def snapshot(self) -> Path:
        """Save what Redis holds now (SAVE) and answer a copy of that RDB file."""
        with redis.Redis(port=self.port, socket_timeout=5) as client:
            client.save()
        saved = self.folder / f"snapshot-{time.monotonic_ns()}.rdb"
        shutil.copyfile(self.folder / RDB_FILE, saved)
        return saved

    def restart_from(self, snapshot: Path) -> None:
        """Crash and come back holding `snapshot`: the changes made since it are gone."""
        self.kill()
        shutil.copyfile(snapshot, self.folder / RDB_FILE)
        self.start()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop at once, as a crash would; what it held is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        self.process.wait(10)


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    server = RedisServer(require_redis_server(), Path(tempfile.mkdtemp(prefix="edgeserve-redis-")))
    server.start()
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(server.folder, ignore_errors=True)
