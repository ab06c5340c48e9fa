"""The admin API: bearer token, compared in constant time; disabled without ADMIN_TOKEN.

Wrong tokens from one client address (the one the rate limiter uses) lock it out for a while
(server/lockout.py), so a token cannot be guessed at request speed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from edgeserve.errors import (
    AdminDisabled,
    AdminLockedOut,
    ClientCertificateRequired,
    InvalidField,
    Unauthorized,
)
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.server import rollout, upload
from edgeserve.server.bearer import bearer_matches
from edgeserve.server.lockout import FailedLogins
from edgeserve.server.payload import json_object
from edgeserve.server.ratelimit import retry_after_header
from edgeserve.server.runtime import Runtime
from edgeserve.server.tls import has_client_certificate
from edgeserve.state.schema import InvalidState, SlotModel
from edgeserve.traffic.class_flips import MAX_CLASSES, class_rows
from edgeserve.variants import CANDIDATE

admin = Blueprint("admin", url_prefix="/admin")
Handler = Callable[..., Awaitable[HTTPResponse]]


def require_token(handler: Handler) -> Handler:
    @wraps(handler)
    async def checked(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        settings = request.app.ctx.runtime.settings
        token = settings.admin_token
        if not token:
            raise AdminDisabled("the admin API is disabled: set ADMIN_TOKEN (16+ characters)")
        if settings.tls_client_ca_file is not None and not has_client_certificate(
            request.transport
        ):
            raise ClientCertificateRequired(
                "the admin API needs a client certificate signed by TLS_CLIENT_CA_FILE's CA: "
                "connect with one (edgeserve --cert FILE --key FILE ...)"
            )
        check_token(request, token)
        return await handler(request, *args, **kwargs)

    return checked


def check_token(request: Request, token: str) -> None:
    """The bearer token, unless this address must wait; nothing awaits between the two steps,
    so concurrent guesses from one address are counted before the next one is checked."""
    logins: FailedLogins = request.app.ctx.failed_logins
    client: str = request.ctx.client
    wait = logins.wait(client)
    if wait > 0:
        raise AdminLockedOut(
            "too many wrong admin tokens from this address: wait the Retry-After seconds "
            "(longer after each further wrong token), then send Authorization: Bearer "
            "<ADMIN_TOKEN>",
            retry_after=retry_after_header(wait),
        )
    if bearer_matches(request, token):
        logins.succeeded(client)
        return
    metrics.admin_auth_failures.inc()
    locked = logins.failed(client)
    if locked > 0:
        metrics.admin_lockouts.inc()
        log.warning("admin_locked_out", client=client, seconds=locked)
    raise Unauthorized("missing or wrong bearer token: send Authorization: Bearer <ADMIN_TOKEN>")


def rollback_to(previous_a: SlotModel | None) -> dict[str, str] | None:
    """The model `POST /admin/rollback` would put back in A, as versions are shown."""
    if previous_a is None:
        return None
    return {"path": previous_a.path, "version": previous_a.version[:12]}


def config_view(runtime: Runtime) -> dict[str, Any]:
    state = runtime.state
    return {
        "ab_weight_a": state.ab_weight_a,
        "ab_weight_b": state.ab_weight_b,
        "shadow_enabled": state.shadow_enabled,
        "canary_enabled": state.canary_enabled,
        "sticky_cookie": state.sticky_cookie,
        "models": runtime.registry.describe(),
        "generation": state.generation,
        "last_rollback": state.last_rollback,
        "rollback_to": rollback_to(state.previous_a),
        "quarantine": state.quarantine.to_dict() if state.quarantine else None,
        "feedback": metrics.feedback_by_version(runtime.tracked_versions()),
        "state_store": runtime.sync.store_label,
        "in_sync": runtime.in_sync,
    }


@admin.get("/config")
@require_token
async def get_config(request: Request) -> HTTPResponse:
    return json(config_view(request.app.ctx.runtime))


@admin.post("/config")
@require_token
async def set_config(request: Request) -> HTTPResponse:
    runtime: Runtime = request.app.ctx.runtime
    try:
        await rollout.update_config(runtime, json_object(request))
    except InvalidState as error:
        raise InvalidField(str(error), code="invalid_config") from None
    return json(config_view(runtime))


@admin.get("/shadow")
@require_token
async def shadow_classes(request: Request) -> HTTPResponse:
    """A's top-1 labels against B's since the current B started serving, all workers summed."""
    runtime: Runtime = request.app.ctx.runtime
    b = runtime.registry.get(CANDIDATE)
    b_version = b.version if b is not None else None
    pairs = runtime.class_flips.since(metrics.class_pair_counts(b_version))
    return json(
        {
            "shadow_enabled": runtime.state.shadow_enabled,
            "b": b.describe() if b is not None else None,
            "max_classes": MAX_CLASSES,
            "classes": class_rows(pairs),
        }
    )


@admin.post("/warmup")
@require_token
async def warmup(request: Request) -> HTTPResponse:
    return json({"warmup": await request.app.ctx.runtime.warmup()})


@admin.post("/promote")
@require_token
async def promote(request: Request) -> HTTPResponse:
    runtime: Runtime = request.app.ctx.runtime
    previous, promoted = await rollout.promote(runtime)
    return json({"previous_a": previous, "new_a": promoted, **config_view(runtime)})


@admin.post("/rollback")
@require_token
async def rollback(request: Request) -> HTTPResponse:
    runtime: Runtime = request.app.ctx.runtime
    replaced, restored = await rollout.rollback(runtime)
    return json({"replaced_a": replaced, "restored_a": restored, **config_view(runtime)})


@admin.post("/models/<variant:A|B>")
@require_token
async def load_model(request: Request, variant: str) -> HTTPResponse:
    runtime: Runtime = request.app.ctx.runtime
    body = json_object(request)
    unknown = sorted(set(body) - {"path", "version", "allow_label_change"})
    allow = body.get("allow_label_change", False)
    named = [key for key in ("path", "version") if key in body]
    if unknown or len(named) != 1 or not isinstance(body[named[0]], str) or not body[named[0]]:
        raise InvalidField(
            'the body must be {"path": "<model file in MODEL_DIR>"} or '
            '{"version": "<version of a pushed model>"}, '
            'with optional "allow_label_change": true'
        )
    if not isinstance(allow, bool):
        raise InvalidField(f"allow_label_change must be true or false, got {allow!r}")
    if named == ["version"]:
        kept = await runtime.registry.pushed(body["version"])
    else:
        kept = await runtime.registry.keep_file(body["path"])
    model, changed, warnings = await rollout.load_into(
        runtime, variant, kept, allow_label_change=allow
    )
    loaded = {"variant": variant, **model.describe(), "changed": changed}
    return json({"loaded": loaded, "warnings": warnings, **config_view(runtime)})


@admin.post("/gc")
@require_token
async def collect_models(request: Request) -> HTTPResponse:
    body = json_object(request, required=False)
    dry_run = body.get("dry_run", False)
    if set(body) - {"dry_run"} or not isinstance(dry_run, bool):
        raise InvalidField('the body must be empty or {"dry_run": true|false}')
    decided = await request.app.ctx.runtime.collect_models(dry_run=dry_run)
    return json(decided.to_dict(dry_run=dry_run))


@admin.post("/uploads", stream=True)
@require_token
async def upload_model(request: Request) -> HTTPResponse:
    runtime: Runtime = request.app.ctx.runtime
    registry = runtime.registry
    received = await upload.receive(
        request, registry.model_store, runtime.settings.model_max_bytes, registry.trusted_keys
    )
    kept = received.model
    answer = {
        "version": kept.version[:12],
        "full_version": kept.version,
        "name": Path(kept.path).name,
        "bytes": received.model_bytes,
        "created": received.created,
    }
    return json(answer, status=201 if received.created else 200)
