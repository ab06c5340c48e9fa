"""Start the server: prepare the shared folders in the main process, then run Sanic's workers."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from edgeserve.server.listener import bind
from edgeserve.settings import Settings, SettingsError

EXIT_MODELS_FAILED = 1


def prepare_metrics_dir(settings: Settings) -> Path:
    """prometheus-client multiprocess mode: set the folder before import, wipe it at start."""
    configured = settings.prometheus_multiproc_dir
    folder = configured or Path(tempfile.mkdtemp(prefix="edgeserve-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    # prometheus-client reads its folder from the environment when it is first imported, in
    # this process and the workers; the CLI imports it only where it parses /metrics.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def prepare_state(settings: Settings) -> tuple[Path, dict[str, Any]]:
    """Settle the start state before any worker runs; answers the state file and that state.

    Without STATE_PATH the file is in a per-instance temp folder, still shared by the workers."""
    from edgeserve.observability.logging import log
    from edgeserve.state.start import settle

    if settings.state_path is not None:
        path = settings.state_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            # Not a failed start: the server serves the environment's state, admin is read-only.
            log.error("state_folder_unavailable", folder=str(path.parent), error=error.strerror)
    else:
        path = Path(tempfile.mkdtemp(prefix="edgeserve-state-")) / "state.json"
    return path, settle(settings, path).to_dict()


def check_start_pair(settings: Settings) -> None:
    """The pair the environment names passes the labels check a hot load of it would (422
    labels_mismatch there; here a refused start, before anything is kept or seeded)."""
    from edgeserve.inference.compat import labels_problem
    from edgeserve.inference.declared import declared_meta
    from edgeserve.inference.metadata import unnamed_sidecar

    path_a, path_b = settings.model_va_path, settings.model_vb_path
    if path_b is None:
        return
    meta_a, meta_b = declared_meta(path_a), declared_meta(path_b)
    if meta_a is None or meta_b is None:
        return  # a file that cannot tell is refused by its load, in a load's words
    problem = labels_problem(meta_a.labels, meta_b.labels, unnamed_sidecar(meta_b, path_b))
    if problem is not None:
        raise SettingsError(
            f"MODEL_VB_PATH={str(path_b)!r} is not allowed beside MODEL_VA_PATH="
            f"{str(path_a)!r}: {problem}; if the change is intended, start without B "
            "(MODEL_VB_PATH= or no --model-b) and load it with "
            "'edgeserve admin load B FILE --allow-label-change'"
        )


def serve(settings: Settings, announce: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Serve until drained; `announce` gets the settled start state before any worker runs."""
    # Bound here, not by Sanic, so the one socket is known to every process: stopping it is the
    # drain's first step, and a main process left without workers still answers on it. First,
    # so a busy port fails before anything else is set up.
    listener = bind(settings)
    try:
        serve_on(settings, listener, announce)
    finally:
        listener.close()


def serve_on(
    settings: Settings,
    listener: socket.socket,
    announce: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    check_start_pair(settings)
    # Workers' metrics meet in files (PROMETHEUS_MULTIPROC_DIR, from the environment or an env
    # file). One process keeps them in memory unless the folder was in the environment before
    # start.
    if settings.workers > 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prepare_metrics_dir(settings)
    else:
        # Set but empty, prometheus-client would still count in files: in the working folder.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from edgeserve.observability.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    state_file, start = prepare_state(settings)
    if announce is not None:
        announce(start)
    # A worker that cannot serve writes why here; the main process then exits non-zero, so a
    # supervisor sees a failure rather than a clean stop.
    fatal_file = Path(tempfile.mkstemp(prefix="edgeserve-fatal-")[1])
    try:
        if settings.workers == 1:
            serve_single(settings, state_file, start, fatal_file, listener)
        else:
            serve_workers(settings, state_file, start, fatal_file, listener)
        reason = fatal_file.read_text()
    finally:
        fatal_file.unlink(missing_ok=True)
    if reason:
        raise SystemExit(EXIT_MODELS_FAILED)


def serve_workers(
    settings: Settings,
    state_file: Path,
    start: dict[str, Any],
    fatal_file: Path,
    listener: socket.socket,
) -> None:
    """WORKERS > 1: Sanic's worker manager runs spawned worker processes."""
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from edgeserve.server.app import create_app
    from edgeserve.server.drain import helper_started, release_sigterm, shield_helper_from_sigterm
    from edgeserve.server.protocol import EdgeProtocol

    loader = AppLoader(
        factory=partial(create_app, settings, str(state_file), start, fatal_file=str(fatal_file))
    )
    app = loader.load()
    app.prepare(
        host=settings.host,
        port=settings.port,
        sock=listener,
        workers=settings.workers,
        access_log=False,
        motd=False,
        single_process=False,
        protocol=EdgeProtocol,
    )
    shield_helper_from_sigterm()  # released in app.py once the manager handles SIGTERM
    gc.freeze()  # as each worker does once ready (Runtime.start): the exit skips walking it all
    try:
        Sanic.serve(primary=app, app_loader=loader)
    finally:
        helper_started()
        release_sigterm()


def serve_single(
    settings: Settings,
    state_file: Path,
    start: dict[str, Any],
    fatal_file: Path,
    listener: socket.socket,
) -> None:
    """WORKERS=1: serve in this process; no worker manager, no spawned processes to feed."""
    from sanic import Sanic

    from edgeserve.server.app import create_app
    from edgeserve.server.protocol import EdgeProtocol

    app = create_app(settings, str(state_file), start, fatal_file=str(fatal_file))
    app.prepare(
        host=settings.host,
        port=settings.port,
        sock=listener,
        workers=1,
        access_log=False,
        motd=False,
        single_process=True,
        protocol=EdgeProtocol,
    )
    Sanic.serve_single(primary=app)
