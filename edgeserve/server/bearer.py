"""Bearer tokens (admin API, /metrics): compared as bytes in constant time, never decoded."""

from __future__ import annotations

import hmac

from sanic import Request

from edgeserve.errors import Unauthorized


def bearer_matches(request: Request, token: str) -> bool:
    """Whether `Authorization: Bearer <token>` was sent; any header bytes are safe to compare."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Sanic decodes header bytes with surrogateescape: encoding back the same way gives the
    # bytes the client sent, so a non-UTF-8 header is a wrong token, not a server error.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), token.encode()
    )


def require_bearer(request: Request, token: str, variable: str) -> None:
    if not bearer_matches(request, token):
        raise Unauthorized(
            f"missing or wrong bearer token: send Authorization: Bearer <{variable}>"
        )
