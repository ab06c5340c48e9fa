"""A model in a process of its own: what a candidate does there cannot reach the serving process.

The process (inference.sandbox) holds the model's session under an address-space cap
(MODEL_MEMORY_LIMIT_MB) at a lower CPU priority. This side sends it one tensor at a time and
waits at most INFERENCE_TIMEOUT_MS (plus a grace for onnxruntime's own stop): a process that
does not answer by then is killed. A run that dies, hangs or runs out of memory raises
RunStopped, which the model turns into ModelHazard; the next run starts a fresh process.
Decoding and preprocessing stay in the serving process, on the candidate's own threads.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from edgeserve.errors import ModelLoadError
from edgeserve.inference.model import Model
from edgeserve.inference.session import RunStopped, RunTiming

LOAD_TIMEOUT_SECONDS = 120.0
"""Starting the process and creating the session; warm-up runs have INFERENCE_TIMEOUT_MS each."""
KILL_GRACE_SECONDS = 1.0
"""How long past the timeout onnxruntime's own stop (between two nodes) is waited for."""


class ProcessRunner:
    isolated = True
    batch_dynamic = False  # micro-batches run on the serving process's threads: not for B

    def __init__(
        self,
        path: Path,
        sha256: str,
        *,
        hashed: bool,
        threads: int,
        memory_mb: int,
        timeout_seconds: float,
    ):
        self.path = path
        self.sha256 = sha256
        self.hashed = hashed
        self.threads = threads
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.connection: Connection | None = None
        self.closed = False

    def start(self) -> tuple[Any, ...]:
        """Start the process and load the model in it: ("loaded", meta, sha256, classes)."""
        with self.lock:
            return self._start()

    def _start(self) -> tuple[Any, ...]:
        if self.closed:
            raise RunStopped("was unloaded")
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edgeserve.inference.sandbox",
                    str(theirs.fileno()),
                    str(self.memory_mb),
                    str(self.threads),
                    str(self.timeout_seconds),
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        reply = self._ask(("load", str(self.path), self.sha256, self.hashed), LOAD_TIMEOUT_SECONDS)
        if reply[0] == "refused":
            self._stop()
            raise ModelLoadError(reply[2], code=reply[1])
        return reply

    def run(self, batch: np.ndarray, cpu_timed: bool) -> tuple[np.ndarray, RunTiming]:
        asked = time.perf_counter()
        with self.lock:
            queued = time.perf_counter() - asked
            if self.connection is None:
                self._start()
            reply = self._ask(("run", batch, cpu_timed), self.timeout_seconds + KILL_GRACE_SECONDS)
        if reply[0] == "ran":
            return reply[1], RunTiming(reply[2].seconds, queued)
        raise RuntimeError(reply[1])

    def _ask(self, message: tuple[Any, ...], timeout: float) -> tuple[Any, ...]:
        """Send one message and wait for the answer; a hazard stops the process."""
        assert self.connection is not None
        try:
            self.connection.send(message)
            if not self.connection.poll(timeout):
                self._stop()
                raise RunStopped(
                    f"ran past INFERENCE_TIMEOUT_MS ({self.timeout_seconds * 1000:g} ms) and its "
                    "process was stopped",
                    timed_out=True,
                )
            reply = self.connection.recv()
        except (EOFError, OSError):
            raise RunStopped(self._died()) from None
        if reply[0] == "stopped":
            if not reply[2]:  # out of memory: its heap may be in any state; start afresh
                self._stop()
            raise RunStopped(reply[1], timed_out=reply[2])
        return reply

    def _died(self) -> str:
        assert self.process is not None
        code = self.process.wait()
        self._stop()
        if code < 0:
            name = signal.Signals(-code).name
            hint = ": killed, most likely out of memory" if code == -signal.SIGKILL else ""
            return f"crashed: its process died ({name}{hint})"
        return f"crashed: its process exited with status {code}"

    def _stop(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None

    def close(self) -> None:
        """Stop the process now, even under a run in flight (which then fails at once)."""
        self.closed = True
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
        if self.lock.acquire(blocking=False):  # else the run in flight cleans up after itself
            try:
                self._stop()
            finally:
                self.lock.release()


def load_isolated(
    path: Path,
    *,
    sha256: str,
    hashed: bool,
    threads: int,
    memory_mb: int,
    timeout_seconds: float,
) -> Model:
    """Load a model in a process of its own; ModelLoadError, or RunStopped when loading it
    killed or hung that process."""
    runner = ProcessRunner(
        path,
        sha256,
        hashed=hashed,
        threads=threads,
        memory_mb=memory_mb,
        timeout_seconds=timeout_seconds,
    )
    _, meta, loaded_sha256, num_classes = runner.start()
    return Model(
        path=Path(path), runner=runner, meta=meta, sha256=loaded_sha256, num_classes=num_classes
    )
