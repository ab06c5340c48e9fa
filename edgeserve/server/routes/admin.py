"""The admin API: bearer token, compared in constant time; disabled without ADMIN_TOKEN."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from edgeserve.errors import AdminDisabled, InvalidField
from edgeserve.server import rollout
from edgeserve.server.bearer import require_bearer
from edgeserve.server.payload import json_object
from edgeserve.server.runtime import Runtime
from edgeserve.state.schema import InvalidState

admin = Blueprint("admin", url_prefix="/admin")
Handler = Callable[..., Awaitable[HTTPResponse]]


def require_token(handler: Handler) -> Handler:
    @wraps(handler)
    async def checked(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        token = request.app.ctx.runtime.settings.admin_token
        if not token:
            raise AdminDisabled("the admin API is disabled: set ADMIN_TOKEN (16+ characters)")
        require_bearer(request, token, "ADMIN_TOKEN")
        return await handler(request, *args, **kwargs)

    return checked


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
        "quarantine": state.quarantine.to_dict() if state.quarantine else None,
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


@admin.post("/models/<variant:A|B>")
@require_token
async def load_model(request: Request, variant: str) -> HTTPResponse:
    runtime: Runtime = request.app.ctx.runtime
    body = json_object(request)
    unknown = sorted(set(body) - {"path", "allow_label_change"})
    allow = body.get("allow_label_change", False)
    if unknown or not isinstance(body.get("path"), str) or not body["path"]:
        raise InvalidField(
            'the body must be {"path": "<model file in MODEL_DIR>"} '
            'with optional "allow_label_change": true'
        )
    if not isinstance(allow, bool):
        raise InvalidField(f"allow_label_change must be true or false, got {allow!r}")
    model = await rollout.load_into(runtime, variant, body["path"], allow_label_change=allow)
    return json({"loaded": {"variant": variant, **model.describe()}, **config_view(runtime)})
