"""Health, readiness and metrics: never rate limited; /metrics needs METRICS_TOKEN when set."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from edgeserve.observability import metrics
from edgeserve.server.bearer import require_bearer
from edgeserve.server.watchdog import missing_workers

health = Blueprint("health")


@health.get("/healthz")
async def healthz(request: Request) -> HTTPResponse:
    return json({"ok": True})


@health.get("/health")
async def health_status(request: Request) -> HTTPResponse:
    return json({"status": "ok"})


@health.get("/ready")
async def ready(request: Request) -> HTTPResponse:
    loaded = request.app.ctx.runtime.ready
    missing = missing_workers()  # workers that kept dying: this instance runs short
    ready = loaded and missing == 0
    body = {"ready": ready, "models_loaded": loaded}
    if missing:
        body["missing_workers"] = missing
    return json(body, status=200 if ready else 503)


@health.get("/metrics")
async def metrics_text(request: Request) -> HTTPResponse:
    token = request.app.ctx.settings.metrics_token
    if token:
        require_bearer(request, token, "METRICS_TOKEN")
    body, content_type = metrics.render()
    return raw(body, content_type=content_type)
