"""Start the server: prepare the shared folders in the main process, then run Sanic's workers."""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from edgeserve.settings import Settings


def prepare_metrics_dir() -> Path:
    """prometheus-client multiprocess mode: set the folder before import, wipe it at start."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="edgeserve-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
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


def serve(settings: Settings) -> None:
    # Workers' metrics meet in files. One process keeps them in memory unless the folder was
    # set before start: prometheus-client picks its storage at import, which has happened.
    if settings.workers > 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prepare_metrics_dir()
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from edgeserve.observability.logging import configure_logging
    from edgeserve.server.app import create_app

    configure_logging(settings.log_level, settings.log_format)
    state_file, start = prepare_state(settings)
    if settings.workers == 1:
        serve_single(settings, state_file, start)
        return
    loader = AppLoader(factory=partial(create_app, settings, str(state_file), start))
    app = loader.load()
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        motd=False,
        single_process=False,
    )
    Sanic.serve(primary=app, app_loader=loader)


def serve_single(settings: Settings, state_file: Path, start: dict[str, Any]) -> None:
    """WORKERS=1: serve in this process; no worker manager, no spawned processes to feed."""
    from sanic import Sanic

    from edgeserve.server.app import create_app

    app = create_app(settings, str(state_file), start)
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=1,
        access_log=False,
        motd=False,
        single_process=True,
    )
    Sanic.serve_single(primary=app)
