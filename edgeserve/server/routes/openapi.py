"""GET /openapi.json: the hand-written OpenAPI 3.1 description of the HTTP API.

A test keeps it equal to the routes, and a schemathesis run checks the server against it."""

from __future__ import annotations

from importlib.resources import files

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw

openapi = Blueprint("openapi")
DOCUMENT = files("edgeserve.server").joinpath("openapi.json").read_bytes()


@openapi.get("/openapi.json")
async def openapi_document(request: Request) -> HTTPResponse:
    return raw(DOCUMENT, content_type="application/json")
