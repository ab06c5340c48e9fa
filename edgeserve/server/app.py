"""The Sanic app factory: it only wires things. Models load in a listener, never at import."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import structlog
from sanic import Request, Sanic
from sanic.response import HTTPResponse

from edgeserve.errors import one_line
from edgeserve.observability import metrics
from edgeserve.observability.logging import configure_logging, log
from edgeserve.server import listener
from edgeserve.server.drain import (
    drain_on_stop_signal,
    helper_started,
    release_sigterm,
    stop_listening_first,
)
from edgeserve.server.errors import JsonErrorHandler, error_response, trace_id_of
from edgeserve.server.lockout import FailedLogins
from edgeserve.server.protocol import EdgeRequest
from edgeserve.server.proxies import ClientAddress
from edgeserve.server.ratelimit import TokenBuckets, retry_after_header
from edgeserve.server.routes.admin import admin
from edgeserve.server.routes.disagreements import disagreements
from edgeserve.server.routes.feedback import feedback
from edgeserve.server.routes.health import health
from edgeserve.server.routes.infer import infer
from edgeserve.server.routes.oip import oip
from edgeserve.server.routes.openapi import openapi
from edgeserve.server.runtime import Runtime
from edgeserve.server.tls import cert_loader, server_context
from edgeserve.server.watchdog import watch_workers
from edgeserve.settings import Settings
from edgeserve.state.backend import open_answer_store, open_store
from edgeserve.state.disagreement_store import store_for
from edgeserve.state.model_store import ModelStore, folder_beside
from edgeserve.state.schema import parse_state
from edgeserve.state.start import state_from_env
from edgeserve.traffic.feedback import SeenTokens

RATE_LIMITED_PREFIXES = ("/v1/", "/v2/models/", "/admin/")
# Metric labels come from closed sets: any other method token is "other".
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
APP_NAME = "edgeserve"
# What one connection may have buffered before Sanic stops reading it: a typical upload arrives
# at once (the benchmark's bodies are 62-118 KB), and a client pipelining behind a slow request
# still holds no more than this per connection (x MAX_CONNECTIONS).
REQUEST_BUFFER_BYTES = 256 * 1024


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def route_label(request: Request) -> str:
    route = request.route
    return "/" + route.path.lstrip("/") if route is not None else "unmatched"


def method_label(request: Request) -> str:
    return request.method if request.method in STANDARD_METHODS else "other"


def create_app(
    settings: Settings,
    state_file: str,
    start: dict[str, Any] | None = None,
    fatal_file: str | None = None,
) -> Sanic:
    """`start` is the state the main process settled on (see serve.py); without it, the
    environment's. A worker that cannot load its models writes why to `fatal_file`."""
    configure_logging(settings.log_level, settings.log_format)
    app = Sanic(
        APP_NAME,
        dumps=_dumps,
        error_handler=JsonErrorHandler(),
        request_class=EdgeRequest,
        configure_logging=False,
        env_prefix=None,  # Sanic's SANIC_* variables would silently change the edge's rules
        certloader_class=cert_loader(settings) if settings.tls_cert_file else None,
    )
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.REQUEST_MAX_HEADER_SIZE = settings.max_header_bytes
    # Sanic stops reading a connection once this much is buffered and starts again when it
    # wants more: two epoll changes per request for a body above its 64 KiB default, each one
    # a GIL release the event loop then waits to win back from the inference threads. The body
    # is kept whole in memory anyway (up to MAX_BODY_BYTES), so buffer a typical image at once.
    # Sanic also caps a request's head at this size less 4 KiB: never below MAX_HEADER_BYTES.
    app.config.REQUEST_BUFFER_SIZE = max(REQUEST_BUFFER_BYTES, settings.max_header_bytes + 4096)
    # Sanic's own timeouts restart with every byte; EdgeProtocol adds whole deadlines on top.
    app.config.REQUEST_TIMEOUT = settings.header_timeout_seconds
    app.config.KEEP_ALIVE_TIMEOUT = settings.keep_alive_timeout_seconds
    app.config.ACCESS_LOG = False
    # Under uvloop, Sanic's shutdown sometimes has its event loop stopped again in the middle of
    # a long drain ("Event loop stopped before Future completed"): the worker then skips its stop
    # hooks and drops what it had not answered. The standard loop drains cleanly (tested).
    app.config.USE_UVLOOP = False
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = settings.graceful_shutdown_seconds
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.ctx.settings = settings
    app.ctx.draining = False
    app.ctx.buckets = TokenBuckets(settings.rate_limit_rps, settings.rate_limit_burst)
    app.ctx.failed_logins = FailedLogins(
        settings.admin_lockout_failures, settings.admin_lockout_seconds
    )
    client_address = ClientAddress(settings.trusted_proxies)
    app.blueprint(health)
    app.blueprint(infer)
    app.blueprint(oip)
    app.blueprint(admin)
    app.blueprint(disagreements)
    app.blueprint(feedback)
    app.blueprint(openapi)
    app.ctx.feedback_seen = SeenTokens(settings.feedback_replay_memory)

    @app.main_process_start
    async def after_helper_started(app: Sanic) -> None:
        helper_started()  # see serve.py: SIGTERM stays held until watch_the_workers

    @app.main_process_ready
    async def watch_the_workers(app: Sanic) -> None:
        listening = listener.of_app(app)
        if listening is not None:
            stop_listening_first(app.manager, listening)
        release_sigterm()  # held since serve.py started Sanic (see shield_helper_from_sigterm)
        watch_workers(app.manager, listening, server_context(settings))

    @app.before_server_start
    async def open_runtime(app: Sanic) -> None:
        model_store = ModelStore(folder_beside(Path(state_file)))
        start_state = (
            parse_state(start) if start is not None else state_from_env(settings, model_store)
        )
        store = open_store(settings, Path(state_file))
        disagreements = store_for(settings, Path(state_file))
        answers = open_answer_store(settings, Path(state_file))
        app.ctx.runtime = Runtime(settings, store, start_state, model_store, disagreements, answers)
        metrics.record_build_info()

    @app.after_server_start
    async def load_models(app: Sanic) -> None:
        runtime: Runtime = app.ctx.runtime
        app.add_task(_start(runtime), name="load_models")

    @app.after_server_start
    async def drain_on_signal(app: Sanic) -> None:
        drain_on_stop_signal(app, listener.of_app(app), whole_instance=settings.workers == 1)

    @app.before_server_stop
    async def stop_background(app: Sanic) -> None:
        app.ctx.draining = True  # answers from now on say Connection: close
        for name in ("load_models", "follow_state"):
            await app.cancel_task(name, raise_exception=False)
        app.purge_tasks()

    @app.after_server_stop
    async def close_runtime(app: Sanic) -> None:
        # After Sanic has drained in-flight requests (GRACEFUL_SHUTDOWN_TIMEOUT).
        await app.ctx.runtime.close()
        await app.ctx.runtime.sync.store.close()
        metrics.mark_worker_dead(os.getpid())
        log.info("worker_stopped", worker=os.getpid())

    async def _start(runtime: Runtime) -> None:
        try:
            await runtime.start()
        except Exception as error:
            reason = one_line(error)
            log.critical("models_failed_to_load", error=reason)
            if fatal_file is not None:
                Path(fatal_file).write_text(reason)
            app.stop()
            return
        app.add_task(runtime.sync.follow(), name="follow_state")

    @app.on_request
    async def begin(request: Request) -> HTTPResponse | None:
        # A keep-alive connection reuses one task: clear what the last request bound.
        structlog.contextvars.clear_contextvars()
        request.ctx.started = time.perf_counter()
        request.ctx.variant = None
        request.ctx.error_code = None
        request.ctx.new_client_id = None
        trace_id_of(request)
        request.ctx.client = client_address.of(request)
        if request.path.startswith(RATE_LIMITED_PREFIXES):
            wait = app.ctx.buckets.take(request.ctx.client)
            if wait > 0:
                metrics.rate_limited.labels(route_label(request)).inc()
                request.ctx.error_code = "rate_limited"
                return error_response(
                    request,
                    "rate_limited",
                    "too many requests from this client: slow down and retry after "
                    "the Retry-After seconds (RATE_LIMIT_RPS / RATE_LIMIT_BURST)",
                    {"Retry-After": retry_after_header(wait)},
                )
        return None

    @app.on_response
    async def finish(request: EdgeRequest, response: HTTPResponse) -> None:
        trace_id = trace_id_of(request)
        response.headers["Trace-Id"] = trace_id
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path.startswith("/admin/"):
            response.headers["Cache-Control"] = "no-store"
        variant = getattr(request.ctx, "variant", None)
        if variant is not None:  # an error too says which model failed
            response.headers["X-Edgeserve-Variant"] = variant
        new_client_id = getattr(request.ctx, "new_client_id", None)
        if new_client_id is not None:
            response.add_cookie(
                settings.sticky_cookie_name,
                new_client_id,
                httponly=True,
                samesite="Lax",
                secure=settings.sticky_cookie_secure,
                max_age=365 * 24 * 3600,
            )
        started = getattr(request.ctx, "started", None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        route, method = route_label(request), method_label(request)
        metrics.http_requests.labels(route, method, str(response.status)).inc()
        metrics.http_request_duration.labels(route, method).observe(seconds)
        read = request.body_bytes_read
        # A 413 from the announced length read nothing: no body size to record. One refused
        # part way (a streamed upload) records what it read.
        if request.method in ("POST", "PUT", "PATCH") and (read or response.status != 413):
            metrics.request_body_bytes.labels(route).observe(read)
        log.info(
            "request",
            trace_id=trace_id,
            method=request.method,
            route=route,
            path=request.path,
            status=response.status,
            variant=getattr(request.ctx, "variant", None),
            duration_ms=round(seconds * 1000, 3),
            error_code=getattr(request.ctx, "error_code", None),
            client=getattr(request.ctx, "client", None) or request.ip,
            worker=os.getpid(),
        )

    return app
