"""The drain: what SIGTERM or SIGINT starts, in the main process and in each worker.

The order is the contract: first the instance stops listening (new connections are refused),
then workers answer with `Connection: close`. A client told to close then reconnects to a
refused port, never into a queue that nobody accepts from. The first signal starts the drain;
a repeat (the main process passes the group's signal on to its workers) is ignored, because
Sanic's default for it, once the first has been handled, would end the worker mid-drain."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from sanic import Sanic

from edgeserve.observability.logging import log
from edgeserve.server.listener import is_listening, stop_listening

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How long a worker stopped on its own (a restart, a signal to its pid) waits for the instance
# to stop listening before it drains anyway: then the other workers still take new connections.
LISTEN_STOP_WAIT_SECONDS = 1.0
LISTEN_POLL_SECONDS = 0.01


def stop_listening_first(manager: Any, listener: socket.socket) -> None:
    """Main process (WORKERS > 1): on a stop signal, refuse new connections, then let Sanic's
    manager pass the stop on to the workers."""
    stop_workers: Callable[[int, Any], None] = manager.shutdown_signal

    def on_signal(signum: int, frame: Any) -> None:
        stop_listening(listener)
        # Not here: Sanic's handler writes worker states to its helper process, and the code this
        # handler interrupted may be halfway through a call on that same connection (the main
        # loop reads those states ten times a second): the two would garble each other.
        threading.Thread(target=stop_workers, args=(signum, None), name="edgeserve-stop").start()

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)


def drain_on_stop_signal(app: Sanic, listener: socket.socket | None, whole_instance: bool) -> None:
    """In a worker, once it serves: the first stop signal drains, repeats are ignored.

    `whole_instance`: this process alone serves the listening socket (WORKERS=1), so its stop
    is the instance's and it stops listening itself."""
    loop = asyncio.get_running_loop()
    wake_reader, wake_writer = socket.socketpair()
    wake_reader.setblocking(False)
    wake_writer.setblocking(False)
    drains: list[asyncio.Task[None]] = []

    def on_wakeup() -> None:
        try:
            received = wake_reader.recv(64)
        except BlockingIOError:
            return
        for signum in received:
            if signum not in STOP_SIGNALS:
                continue
            name = signal.Signals(signum).name
            if drains:
                log.info("stop_signal_ignored", signal=name, reason="draining", worker=os.getpid())
                continue
            log.info("drain_started", signal=name, worker=os.getpid())
            drains.append(loop.create_task(drain(app, listener, whole_instance)))

    # asyncio's handlers, once Sanic removes them at stop, give the signal its default action
    # back (SIGTERM ends the process, SIGINT raises KeyboardInterrupt): a repeat mid-drain would
    # drop every open connection. Python-level handlers stay for the process's life; the wakeup
    # byte carries the signal into the loop. (Between the two calls below, a signal at start-up
    # would still meet the default: a window of microseconds, before any drain.)
    for sig in STOP_SIGNALS:
        loop.remove_signal_handler(sig)
        signal.signal(sig, _noted)
    signal.set_wakeup_fd(wake_writer.fileno(), warn_on_full_buffer=False)
    loop.add_reader(wake_reader.fileno(), on_wakeup)
    if listener is not None:
        loop.set_exception_handler(_quiet_stopped_listener(listener))
    app.ctx.stop_signal_sockets = (wake_reader, wake_writer)  # kept open for the process's life


def _noted(signum: int, frame: Any) -> None:
    """Nothing to do here: the signal's wakeup byte reaches the event loop (see on_wakeup)."""


async def drain(app: Sanic, listener: socket.socket | None, whole_instance: bool) -> None:
    """Stop accepting, wait until the instance stopped listening, then answer with
    Connection: close while Sanic waits for open connections (GRACEFUL_SHUTDOWN_TIMEOUT)."""
    if listener is not None:
        asyncio.get_running_loop().remove_reader(listener.fileno())
        if whole_instance:
            stop_listening(listener)
        else:
            waited = 0.0
            while is_listening(listener) and waited < LISTEN_STOP_WAIT_SECONDS:
                await asyncio.sleep(LISTEN_POLL_SECONDS)
                waited += LISTEN_POLL_SECONDS
    app.ctx.draining = True
    app.stop(terminate=False)


def _quiet_stopped_listener(
    listener: socket.socket,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """The main process may stop listening before this worker stops accepting: accept() then
    fails with EINVAL on every loop turn. Stop accepting here instead of logging a traceback."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if (
            isinstance(error, OSError)
            and error.errno == errno.EINVAL
            and not is_listening(listener)
        ):
            loop.remove_reader(listener.fileno())
            return
        loop.default_exception_handler(context)

    return handle


def shield_helper_from_sigterm() -> None:
    """Main process (WORKERS > 1), before Sanic starts its helper process (multiprocessing's
    Manager, which keeps the workers' states). A SIGTERM to the process group would end that
    helper at once, and the main process, reading the states mid-drain, would fail and exit 1.

    The helper inherits SIGTERM ignored. Here it is also blocked, so one that arrives meanwhile
    is kept pending (a blocked signal is never discarded) until release_sigterm."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def helper_started() -> None:
    """Main process, once the helper runs (Sanic's main_process_start): back to the default
    action, still blocked until the worker manager's handler is in place."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def release_sigterm() -> None:
    """Deliver a SIGTERM held since shield_helper_from_sigterm; workers started after this get
    SIGTERM normally."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
