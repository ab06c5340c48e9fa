"""Start the server: prepare the shared folders in the main process, then run Sanic's workers."""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import partial
from pathlib import Path

from edgeserve.settings import Settings

STATE_FILE_ENV = "EDGESERVE_STATE_FILE"


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


def prepare_state(settings: Settings) -> Path:
    """Restore STATE_PATH (or start from the environment) before any worker reads it."""
    from edgeserve.inference.model import file_version
    from edgeserve.observability.logging import log
    from edgeserve.traffic.state import RuntimeState, SlotModel, StateStore, restore_or_initialise

    if settings.state_path is not None:
        path = settings.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="edgeserve-state-")) / "state.json"
    models = {"A": settings.model_va_path}
    if settings.model_vb_path is not None:
        models["B"] = settings.model_vb_path
    initial = RuntimeState(
        ab_weight_a=settings.ab_weight_a,
        ab_weight_b=settings.ab_weight_b,
        shadow_enabled=settings.shadow_enabled,
        canary_enabled=settings.canary_enabled,
        sticky_cookie=settings.sticky_cookie,
        models={
            slot: SlotModel(str(model_path.resolve()), file_version(model_path))
            for slot, model_path in models.items()
        },
    )
    restore_or_initialise(StateStore(path), initial, log)
    return path


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
    state_file = prepare_state(settings)
    if settings.workers == 1:
        serve_single(settings, state_file)
        return
    loader = AppLoader(factory=partial(create_app, settings, str(state_file)))
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


def serve_single(settings: Settings, state_file: Path) -> None:
    """WORKERS=1: serve in this process; no worker manager, no spawned processes to feed."""
    from sanic import Sanic

    from edgeserve.server.app import create_app

    app = create_app(settings, str(state_file))
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=1,
        access_log=False,
        motd=False,
        single_process=True,
    )
    Sanic.serve_single(primary=app)
