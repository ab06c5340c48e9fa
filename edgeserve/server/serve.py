"""Start the server: prepare the shared folders in the main process, then run Sanic's workers."""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import partial
from pathlib import Path

from edgeserve.settings import Settings

STATE_FILE_ENV = "EDGESERVE_STATE_FILE"
EXIT_MODELS_FAILED = 1


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
    prepare_metrics_dir()
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from edgeserve.observability.logging import configure_logging
    from edgeserve.server.app import create_app
    from edgeserve.server.protocol import EdgeProtocol

    configure_logging(settings.log_level, settings.log_format)
    state_file = prepare_state(settings)
    # A worker that cannot serve writes why here; the main process then exits non-zero, so a
    # supervisor sees a failure rather than a clean stop.
    fatal_file = Path(tempfile.mkstemp(prefix="edgeserve-fatal-")[1])
    loader = AppLoader(
        factory=partial(create_app, settings, str(state_file), fatal_file=str(fatal_file))
    )
    app = loader.load()
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        motd=False,
        single_process=False,
        protocol=EdgeProtocol,
    )
    try:
        Sanic.serve(primary=app, app_loader=loader)
        reason = fatal_file.read_text()
    finally:
        fatal_file.unlink(missing_ok=True)
    if reason:
        raise SystemExit(EXIT_MODELS_FAILED)
