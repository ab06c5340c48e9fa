"""The HTTP edge below the routes: request targets, header and body deadlines, a connection
cap, and a drain that answers what was read and closes the rest."""

from __future__ import annotations

from typing import Any

from sanic import Request
from sanic.exceptions import BadURL


class InvalidRequestTarget(BadURL):
    """A request target httptools cannot parse (a control byte, a space...): 400, not a crash."""

    edge_code = "invalid_request_target"


class EdgeRequest(Request):
    def __init__(self, url_bytes: bytes, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(url_bytes, *args, **kwargs)
        except BadURL:
            if kwargs.get("method") != "NONE":
                raise InvalidRequestTarget(
                    "the request target has a control or other invalid character: "
                    "percent-encode it (RFC 3986)"
                ) from None
            # Sanic builds a stand-in request (method NONE) to answer a failed one; with the
            # same bad target it would fail again and drop the connection with a traceback.
            super().__init__(b"/", *args, **kwargs)
