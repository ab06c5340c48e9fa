"""One JSON error envelope for every error, Sanic's own (404, 405, 413, ...) included."""

from __future__ import annotations

import re

from sanic import Request
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

from edgeserve.errors import CODES, SANIC_CODES, EdgeserveError
from edgeserve.observability.logging import log
from edgeserve.server.tracing import trace_id_from

MESSAGES = {
    404: "no such endpoint: see docs/operations.md for the API",
    413: "request body is larger than MAX_BODY_BYTES allows: send a smaller image",
}


def trace_id_of(request: Request | None) -> str:
    if request is None:
        return trace_id_from({})
    trace_id = getattr(request.ctx, "trace_id", None)
    if trace_id is None:
        trace_id = request.ctx.trace_id = trace_id_from(request.headers)
    return trace_id


def error_response(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> HTTPResponse:
    trace_id = trace_id_of(request)
    return json(
        {"error": {"code": code, "message": message}, "trace_id": trace_id},
        status=status,
        headers={"Trace-Id": trace_id, **(headers or {})},
    )


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class JsonErrorHandler(ErrorHandler):
    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        if request is not None:
            request.ctx.error_code = None
        if isinstance(exception, EdgeserveError):
            status, code, message = exception.status_code, exception.code, exception.message
            headers = getattr(exception, "headers", None)
        elif isinstance(exception, SanicException):
            status = exception.status_code
            code = SANIC_CODES.get(status, "bad_request" if status < 500 else "internal_error")
            status = CODES[code]
            message = MESSAGES.get(status) or _one_line(str(exception)) or code.replace("_", " ")
            headers = dict(getattr(exception, "headers", None) or {})
        else:
            status, code = 500, "internal_error"
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
        return error_response(request, status, code, message, headers)
