"""In the main process: a worker that dies (killed, crashed) is replaced within about a second,
with an error log line and a counter. Sanic notices the death but does not act on it.

A worker that keeps dying (RESTART_LIMIT deaths within RESTART_WINDOW_SECONDS) is not replaced
again: the file MISSING_WORKERS_FILE in the metrics folder then says how many are missing, and
every worker's /ready answers 503 `missing_workers` so the orchestrator replaces the whole
instance. Once no worker is left, the main process answers that itself (no_workers.py)."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from sanic.worker.process import ProcessState, WorkerProcess

from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.server.no_workers import CODE, answer_while_no_workers

POLL_SECONDS = 0.5
RESTART_LIMIT = 3
RESTART_WINDOW_SECONDS = 60.0
MISSING_WORKERS_FILE = "missing_workers"


def missing_workers_path() -> Path | None:
    """Where the main process records workers it gave up on (wiped with the metrics folder)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(folder) / MISSING_WORKERS_FILE if folder else None


def missing_workers() -> int:
    """How many workers died and were not replaced (0 when the file is absent)."""
    path = missing_workers_path()
    try:
        return int(path.read_text()) if path is not None else 0
    except (OSError, ValueError):
        return 0


def missing_workers_message(missing: int, workers: int) -> str:
    """What /ready says while workers are missing (one line: what is wrong, what to do)."""
    return (
        f"{missing} of {workers} workers kept dying ({RESTART_LIMIT} deaths within "
        f"{RESTART_WINDOW_SECONDS:g} s) and were not replaced: replace this instance "
        "(the log says why: worker_not_replaced)"
    )


def dead_servers(manager: Any, handled: set[int]) -> list[WorkerProcess]:
    """Server worker processes that exited on their own and are not being replaced yet."""
    return [
        process
        for process in manager.transient_processes
        if WorkerProcess.SERVER_LABEL in process.name
        and process.pid not in handled
        and process.state is not ProcessState.TERMINATED  # stopped by the manager itself
        # An exit code exists only once a started process has ended; a replacement that dies
        # while it is still starting counts too.
        and process.exitcode is not None
    ]


def watch_workers(
    manager: Any, listener: socket.socket | None = None, tls: ssl.SSLContext | None = None
) -> threading.Thread:
    """Replace dead workers until the server shuts down; runs as a daemon thread. Once it gave
    up on every worker, the main process answers on `listener` in their place (over TLS with
    `tls`)."""

    deaths: defaultdict[str, deque[float]] = defaultdict(deque)
    given_up: set[str] = set()

    def run() -> None:
        handled: set[int] = set()
        while True:
            time.sleep(POLL_SECONDS)
            if manager._shutting_down:  # Sanic's own flag: a stop in progress is not a death
                return
            for process in dead_servers(manager, handled):
                handled.add(process.pid)
                recent = deaths[process.name]
                recent.append(time.monotonic())
                while recent and recent[0] < time.monotonic() - RESTART_WINDOW_SECONDS:
                    recent.popleft()
                if len(recent) >= RESTART_LIMIT or process.name in given_up:
                    if process.name not in given_up:
                        given_up.add(process.name)
                        give_up(process, len(given_up))
                    continue
                log.error(
                    "worker_died",
                    worker=process.pid,
                    exit_code=process.exitcode,
                    action="replacing it",
                )
                metrics.worker_restarts.inc()
                # The manager's own loop restarts it: a message it reads like a reload request.
                manager.monitor_publisher.send(process.name)

    def give_up(process: WorkerProcess, missing: int) -> None:
        log.error(
            "worker_not_replaced",
            worker=process.pid,
            exit_code=process.exitcode,
            deaths=RESTART_LIMIT,
            window_seconds=RESTART_WINDOW_SECONDS,
            missing_workers=missing,
        )
        path = missing_workers_path()
        if path is not None:
            path.write_text(str(missing))
        if missing >= manager.num_server and listener is not None:
            log.critical("no_worker_left", workers=manager.num_server, answering=CODE)
            answer_while_no_workers(
                listener, missing_workers_message(missing, manager.num_server), tls
            )

    thread = threading.Thread(target=run, name="edgeserve-watchdog", daemon=True)
    thread.start()
    return thread
