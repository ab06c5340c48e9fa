"""Health, readiness and metrics: never rate limited; /metrics needs METRICS_TOKEN when set."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from edgeserve.errors import MissingWorkers
from edgeserve.observability import metrics
from edgeserve.server.bearer import require_bearer
from edgeserve.server.watchdog import missing_workers, missing_workers_message

health = Blueprint("health")


@health.get("/healthz")
async def healthz(request: Request) -> HTTPResponse:
    return json({"ok": True})


@health.get("/health")
async def health_status(request: Request) -> HTTPResponse:
    return json({"status": "ok"})


@health.get("/ready")
async def ready(request: Request) -> HTTPResponse:
    missing = missing_workers()  # workers that kept dying: this instance runs short
    if missing:
        raise MissingWorkers(missing_workers_message(missing, request.app.ctx.settings.workers))
    loaded = request.app.ctx.runtime.ready
    return json({"ready": loaded, "models_loaded": loaded}, status=200 if loaded else 503)


@health.get("/metrics")
async def metrics_text(request: Request) -> HTTPResponse:
    token = request.app.ctx.settings.metrics_token
    if token:
        require_bearer(request, token, "METRICS_TOKEN")
    body, content_type = metrics.render(request.app.ctx.runtime.tracked_versions())
    return raw(body, content_type=content_type)
