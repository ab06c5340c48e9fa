"""Trace-Id for every answer: a safe X-Request-ID, else traceparent's trace id, else a new one."""

from __future__ import annotations

import re
from collections.abc import Mapping

from edgeserve.ids import hex_id

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TRACEPARENT_PATTERN = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
INVALID_TRACE_ID = "0" * 32


def trace_id_from(headers: Mapping[str, str]) -> str:
    request_id = headers.get("x-request-id")
    if request_id is not None and REQUEST_ID_PATTERN.match(request_id):
        return request_id
    traceparent = headers.get("traceparent")
    if traceparent is not None:
        match = TRACEPARENT_PATTERN.match(traceparent.strip().lower())
        if match and match.group(1) != INVALID_TRACE_ID:
            return match.group(1)
    return hex_id()
