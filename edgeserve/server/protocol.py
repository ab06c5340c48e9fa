"""The HTTP edge below the routes: request targets, header and body deadlines, a connection
cap, and a drain that answers what was read and closes the rest."""

from __future__ import annotations

import os
from time import monotonic
from typing import Any

import orjson
from sanic import Request
from sanic.exceptions import BadURL, RequestTimeout
from sanic.headers import format_http1_response
from sanic.http import Http, Stage
from sanic.server.protocols.http_protocol import HttpProtocol

from edgeserve.errors import Overloaded
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.server.errors import envelope

# The two errors below are Sanic's own classes, so Sanic raises and handles them where it
# expects its own; like ours, each names its catalogue `code`, which the JSON handler answers.


class InvalidRequestTarget(BadURL):
    """A request target httptools cannot parse (a control byte, a space...): 400, not a crash."""

    code = "invalid_request_target"


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
        self.streamed_bytes = 0
        """Body bytes a streaming route read: its `body` stays empty, the bytes never held."""

    async def read_streamed(self) -> bytes | None:
        """The next piece of a streamed body (None at its end), counted as it is read."""
        chunk = await self.stream.read()
        if chunk is not None:
            self.streamed_bytes += len(chunk)
        return chunk

    @property
    def body_bytes_read(self) -> int:
        """What was read of the body, buffered or streamed: edgeserve_request_body_bytes."""
        return len(self.body or b"") + self.streamed_bytes


class RequestTimedOut(RequestTimeout):
    """The request's headers or body did not arrive within their whole deadline."""

    code = "request_timeout"


class EdgeHttp(Http):
    """Sanic's HTTP/1.1 state machine, with whole deadlines per phase and drain-aware answers."""

    __slots__ = ()

    async def http1_request_header(self) -> None:
        self.protocol.start_deadline("HEADER_TIMEOUT_SECONDS")
        await super().http1_request_header()
        self.protocol.start_deadline("BODY_TIMEOUT_SECONDS" if self.request_body else None)

    async def read(self) -> bytes | None:
        data = await super().read()
        if not self.request_body:
            self.protocol.start_deadline(None)
        return data

    async def http1_response_header(self, data: bytes, end_stream: bool) -> None:
        if self.protocol.app.ctx.draining:
            self.keep_alive = False  # answered with Connection: close, then closed
        await super().http1_response_header(data, end_stream)


class EdgeProtocol(HttpProtocol):
    """One connection: deadlines that trickled bytes do not reset, and a per-worker cap."""

    HTTP_CLASS = EdgeHttp
    __slots__ = ("deadline", "deadline_setting", "discarding", "refused")

    def _setup(self) -> None:
        super()._setup()
        self.deadline: float | None = None
        self.deadline_setting: str | None = None
        self.refused = False
        self.discarding = False

    def start_deadline(self, setting: str | None) -> None:
        """Start the whole deadline named by `setting` (None: no deadline until the next one)."""
        self.deadline_setting = setting
        if setting is None:
            self.deadline = None
            return
        seconds = getattr(self.app.ctx.settings, setting.lower())
        self.deadline = monotonic() + seconds

    def check_timeouts(self) -> None:
        http = self._http
        if self._task and http is not None and self.deadline and monotonic() > self.deadline:
            seconds = getattr(self.app.ctx.settings, str(self.deadline_setting).lower())
            http.exception = RequestTimedOut(
                f"the request did not arrive within {self.deadline_setting}={seconds:g}: "
                "send it without pauses"
            )
            metrics.connections_closed.labels("request_timeout").inc()
            self.deadline = None
            http.request_body = None  # do not wait for the rest of a stalled body
            self._task.cancel()
            return
        super().check_timeouts()

    def close_if_idle(self) -> bool:
        """Sanic's drain asks each connection once; none is closed at that instant, since a
        client may have just sent its next request: see close_once_idle."""
        self.close_once_idle()
        return False

    def close_once_idle(self) -> None:
        """On drain, end a keep-alive connection once it has stayed idle DRAIN_IDLE_SECONDS, with a
        clean close (FIN, never RST). A request that arrives before is answered (with
        Connection: close, which ends the connection); past the grace period Sanic aborts it."""
        if self.transport is None or self.transport.is_closing() or self.discarding:
            return
        busy = self._http is not None and (self._http.stage is not Stage.IDLE or self.recv_buffer)
        idle_for = 0.0 if busy else monotonic() - self._time
        if idle_for < DRAIN_IDLE_SECONDS:
            self.loop.call_later(DRAIN_IDLE_SECONDS - idle_for, self.close_once_idle)
            return
        self.discarding = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_LINGER_SECONDS, self.close)

    def data_received(self, data: bytes) -> None:
        if not self.discarding:  # reading what is dropped keeps close() from sending a RST
            super().data_received(data)

    def connection_made(self, transport: Any) -> None:
        cap = self.app.ctx.settings.max_connections
        if len(self.connections) >= cap and not self._close_an_idle_connection():
            self.refused = True
            metrics.connections_closed.labels("refused_at_cap").inc()
            _log_at_cap("connection_refused", cap)
            transport.write(REFUSED_ANSWER)
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.refused:
            super().connection_lost(exc)

    def _close_an_idle_connection(self) -> bool:
        """At the cap an idle keep-alive connection gives way to a new client."""
        for connection in list(self.connections):
            http = getattr(connection, "_http", None)
            if http is not None and http.stage is Stage.IDLE and not connection.recv_buffer:
                connection.close()
                self.connections.discard(connection)
                metrics.connections_closed.labels("idle_at_cap").inc()
                _log_at_cap("idle_connection_closed", self.app.ctx.settings.max_connections)
                return True
        return False


def refused_answer() -> bytes:
    """The whole answer to a connection over MAX_CONNECTIONS, written before any request is
    read: the catalogue's status and envelope for `overloaded`, with no request to take a
    trace id from."""
    error = Overloaded("this worker has MAX_CONNECTIONS open connections: retry in a second")
    body = orjson.dumps(envelope(error.code, error.message, trace_id=""))
    headers = {
        "Content-Type": "application/json",
        **error.headers,
        "Connection": "close",
        "X-Content-Type-Options": "nosniff",
        "Content-Length": str(len(body)),
    }
    encoded = [(name.encode(), value.encode()) for name, value in headers.items()]
    return format_http1_response(error.status_code, encoded) + body


# A drain closes a keep-alive connection only after this long without a request: longer than a
# request already on its way takes to arrive, short enough not to hold the drain.
DRAIN_IDLE_SECONDS = 1.0
DRAIN_LINGER_SECONDS = 1.0
REFUSED_ANSWER = refused_answer()
_last_logged: dict[str, float] = {}


def _log_at_cap(event: str, cap: int) -> None:
    # One line a second per event at most: a flood of connections must not flood the logs.
    now = monotonic()
    if now - _last_logged.get(event, float("-inf")) >= 1.0:
        _last_logged[event] = now
        log.warning(event, max_connections=cap, worker=os.getpid())
