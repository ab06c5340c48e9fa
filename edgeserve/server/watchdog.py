"""In the main process: a worker that dies (killed, crashed) is replaced within about a second,
with an error log line and a counter. Sanic notices the death but does not act on it."""

from __future__ import annotations

import threading
import time
from typing import Any

from sanic.worker.process import ProcessState, WorkerProcess

from edgeserve.observability import metrics
from edgeserve.observability.logging import log

POLL_SECONDS = 0.5


def dead_servers(manager: Any, handled: set[int]) -> list[WorkerProcess]:
    """Server worker processes that exited on their own and are not being replaced yet."""
    return [
        process
        for process in manager.transient_processes
        if WorkerProcess.SERVER_LABEL in process.name
        and process.pid not in handled
        and process.state not in (ProcessState.RESTARTING, ProcessState.TERMINATED)
        and not process.is_alive()
    ]


def watch_workers(manager: Any) -> threading.Thread:
    """Replace dead workers until the server shuts down; runs as a daemon thread."""

    def run() -> None:
        handled: set[int] = set()
        while True:
            time.sleep(POLL_SECONDS)
            if manager._shutting_down:  # Sanic's own flag: a stop in progress is not a death
                return
            for process in dead_servers(manager, handled):
                handled.add(process.pid)
                log.error(
                    "worker_died",
                    worker=process.pid,
                    exit_code=process.exitcode,
                    action="replacing it",
                )
                metrics.worker_restarts.inc()
                # The manager's own loop restarts it: a message it reads like a reload request.
                manager.monitor_publisher.send(process.name)

    thread = threading.Thread(target=run, name="edgeserve-watchdog", daemon=True)
    thread.start()
    return thread
