"""One JSON error envelope for every error, Sanic's own (404, 405, 413, ...) included."""

from __future__ import annotations

import re
from asyncio import CancelledError
from typing import Any

from sanic import Request
from sanic.exceptions import PayloadTooLarge, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

from edgeserve.errors import SANIC_CODES, EdgeserveError, one_line, status_of
from edgeserve.observability.logging import log
from edgeserve.server.tracing import trace_id_from

OIP_PATH = re.compile(r"^/v2(/|$)")
ERROR_CODE_HEADER = "X-Edgeserve-Error-Code"
MESSAGES = {
    "not_found": "no such endpoint: see docs/operations.md for the API",
    "payload_too_large": "request body is larger than MAX_BODY_BYTES allows: send a smaller image",
    "uri_too_long": "the request line is longer than MAX_HEADER_BYTES allows: shorten the URL",
    "headers_too_large": "the request headers are larger than MAX_HEADER_BYTES allows: "
    "send fewer or smaller headers",
    "request_timeout": "the request did not arrive in time (HEADER_TIMEOUT_SECONDS, "
    "BODY_TIMEOUT_SECONDS): send it without pauses",
}


def sanic_code(request: Request | None, exception: SanicException) -> str:
    """Our catalogue code for an error Sanic raised itself (or ours, subclassing one of Sanic's
    to be raised where Sanic expects it, with the `code` it answers)."""
    code = getattr(exception, "code", None)
    if code is not None:
        return code
    status = exception.status_code
    if isinstance(exception, PayloadTooLarge) and "header" in str(exception).lower():
        # Sanic says 413 for a head over REQUEST_MAX_HEADER_SIZE: a request line that never
        # ended is a long URL (414), otherwise the headers are too large (431).
        if request is None:
            return "headers_too_large"
        buffer = getattr(request.stream, "recv_buffer", b"")
        line_ended = b"\r\n" in buffer[: request.app.config.REQUEST_MAX_HEADER_SIZE]
        return "headers_too_large" if line_ended else "uri_too_long"
    return SANIC_CODES.get(status, "bad_request" if status < 500 else "internal_error")


def trace_id_of(request: Request | None) -> str:
    if request is None:
        return trace_id_from({})
    trace_id = getattr(request.ctx, "trace_id", None)
    if trace_id is None:
        trace_id = request.ctx.trace_id = trace_id_from(request.headers)
    return trace_id


def envelope(code: str, message: str, trace_id: str) -> dict[str, Any]:
    """The one JSON body of every error answer."""
    return {"error": {"code": code, "message": message}, "trace_id": trace_id}


def error_response(
    request: Request | None,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> HTTPResponse:
    """The error answer for a catalogued code, with that code's one status.

    Under /v2 the body is the inference protocol's {"error": "..."}, which its clients read,
    and the code goes in a header."""
    trace_id = trace_id_of(request)
    if request is not None and OIP_PATH.match(request.path):
        return json(
            {"error": message},
            status=status_of(code),
            headers={"Trace-Id": trace_id, ERROR_CODE_HEADER: code, **(headers or {})},
        )
    return json(
        envelope(code, message, trace_id),
        status=status_of(code),
        headers={"Trace-Id": trace_id, **(headers or {})},
    )


class JsonErrorHandler(ErrorHandler):
    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        if request is not None:
            request.ctx.error_code = None
        if isinstance(exception, EdgeserveError):
            code, message = exception.code, exception.message
            headers = getattr(exception, "headers", None)
        elif isinstance(exception, CancelledError):
            # Sanic's RequestCancelled: the client hung up. Not our failure; never sent.
            code, message, headers = "client_closed_request", "", None
            log.info("client_closed_request", trace_id=trace_id_of(request))
        elif isinstance(exception, SanicException):
            code = sanic_code(request, exception)
            message = (
                MESSAGES.get(code) or one_line(str(exception), limit=None) or code.replace("_", " ")
            )
            headers = dict(getattr(exception, "headers", None) or {})
        else:
            code = "internal_error"
            message = "the server failed unexpectedly; the error is logged with this trace_id"
            headers = None
            log.error(
                "unhandled_error",
                trace_id=trace_id_of(request),
                error_type=type(exception).__name__,
                exc_info=exception,
            )
        if request is not None:
            request.ctx.error_code = code
        return error_response(request, code, message, headers)
