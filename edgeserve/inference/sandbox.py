"""The process a candidate model runs in: `python -m edgeserve.inference.sandbox FD MB THREADS S`.

Started by inference.isolated, one per candidate model and worker. Before onnxruntime is even
imported it caps its own address space (MB, MODEL_MEMORY_LIMIT_MB) and moves itself to the idle
scheduling class (SCHED_IDLE: it runs only on CPU time nothing else wants), so a model that
bombs memory fails its own run, and a slow or hanging one never delays the serving process.
(Niceness 10 was measured first: a hanging B still doubled A's p99 on 2 cores.) It dies with
its parent (the kernel's parent-death signal, sent when the thread that
started it ends: the worker's model-load and candidate threads, which live as long as the
worker), ignores the signals a drain sends the process group (the parent stops it once the
requests in flight are answered), and serves one request at a time on the socket FD:
("load", path, sha256, hashed) once, then ("run", batch, cpu_timed).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

_PR_SET_PDEATHSIG = 1


def confine(memory_mb: int) -> None:
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the line above took effect
        os._exit(0)


def serve(connection: Connection, threads: int, timeout_seconds: float) -> None:
    from edgeserve.errors import EdgeserveError
    from edgeserve.inference.deadline import Deadlines
    from edgeserve.inference.model import Model
    from edgeserve.inference.session import RunStopped

    deadlines = Deadlines(timeout_seconds)
    model: Model | None = None
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        reply: tuple[Any, ...]
        try:
            if message[0] == "load":
                _, path, sha256, hashed = message
                model = Model.load(
                    path,
                    intra_op_threads=threads,
                    expected_sha256=sha256,
                    hashed=hashed,
                    deadlines=deadlines,
                )
                reply = ("loaded", model.meta, model.sha256, model.num_classes)
            else:
                _, batch, cpu_timed = message
                assert model is not None
                reply = ("ran", *model.runner.run(batch, cpu_timed))  # scores, RunTiming
        except RunStopped as stopped:
            reply = ("stopped", stopped.what, stopped.timed_out)
        except MemoryError:
            reply = _out_of_memory()
        except EdgeserveError as error:
            reply = ("refused", error.code, error.message)
        except Exception as error:
            text = str(error)
            if "alloc" in text.lower():  # onnxruntime's std::bad_alloc, under the address cap
                reply = _out_of_memory()
            else:
                reply = ("failed", text or type(error).__name__)
        try:
            connection.send(reply)
        except MemoryError:
            connection.send(("stopped", "ran out of memory sending its answer", False))


def _out_of_memory() -> tuple[str, str, bool]:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    limit_mb = soft // (1024 * 1024) if soft != resource.RLIM_INFINITY else 0
    return ("stopped", f"ran out of memory (MODEL_MEMORY_LIMIT_MB {limit_mb})", False)


def main(argv: list[str]) -> None:
    fd, memory_mb, threads, timeout_seconds = argv
    confine(int(memory_mb))
    serve(Connection(int(fd)), int(threads), float(timeout_seconds))


if __name__ == "__main__":
    main(sys.argv[1:])
