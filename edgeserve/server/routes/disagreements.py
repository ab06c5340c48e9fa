"""The captured disagreements (CAPTURE_DISAGREEMENTS), read from their folder: any worker
answers the same. Admin token as the rest of /admin/*."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from edgeserve.errors import DisagreementNotFound
from edgeserve.server.routes.admin import require_token
from edgeserve.server.runtime import Runtime
from edgeserve.state.disagreement_store import DisagreementStore

disagreements = Blueprint("disagreements", url_prefix="/admin/disagreements")


def store_of(request: Request) -> DisagreementStore:
    runtime: Runtime = request.app.ctx.runtime
    return runtime.disagreements


async def captured(request: Request, disagreement_id: str) -> tuple[dict[str, Any], bytes]:
    """The record and image bytes of one capture; 404 disagreement_not_found without one."""
    found = await asyncio.to_thread(store_of(request).read, disagreement_id)
    if found is None:
        raise DisagreementNotFound(
            f"no captured disagreement {disagreement_id!r}: it was never captured or the "
            "bounds evicted it; list them with GET /admin/disagreements"
        )
    return found


@disagreements.get("")
@require_token
async def list_disagreements(request: Request) -> HTTPResponse:
    store = store_of(request)
    records = await asyncio.to_thread(store.records)
    capture: dict[str, Any] = {
        "enabled": store.max_count > 0,
        "max_count": store.max_count,
        "max_bytes": store.max_bytes,
        "folder": str(store.folder),
    }
    return json({"capture": capture, "count": len(records), "disagreements": records})


@disagreements.get("/<disagreement_id:str>")
@require_token
async def show_disagreement(request: Request, disagreement_id: str) -> HTTPResponse:
    record, image = await captured(request, disagreement_id)
    return json({**record, "image_b64": base64.b64encode(image).decode()})


@disagreements.get("/<disagreement_id:str>/image")
@require_token
async def disagreement_image(request: Request, disagreement_id: str) -> HTTPResponse:
    record, image = await captured(request, disagreement_id)
    return raw(image, content_type=record["image"]["media_type"])
