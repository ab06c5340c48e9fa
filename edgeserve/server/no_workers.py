"""In the main process, once no worker is left: every request is answered 503
`missing_workers`, so probes and clients learn why at once instead of waiting on a connection
nobody accepts.

It accepts on the listening socket the workers used, which the main process still holds: no
port is bound again, and connections queued while the last worker died are answered too. On an
HTTPS port it answers over TLS with the same certificate, so a client learns why there too."""

from __future__ import annotations

import select
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson

from edgeserve.errors import status_of
from edgeserve.server.errors import envelope
from edgeserve.server.listener import is_listening
from edgeserve.server.tracing import trace_id_from

CODE = "missing_workers"
POLL_SECONDS = 0.2  # how soon a stopped listener (the drain) ends the loop
REQUEST_SECONDS = 5.0  # a client that has not sent its request by then is dropped
MAX_CONNECTIONS = 32  # answered at once; more wait in the listen queue
MAX_DISCARDED_BODY = 1 << 20  # read (and drop) a body up to this, so closing does not reset


def answer_while_no_workers(
    listener: socket.socket, message: str, tls: ssl.SSLContext | None = None
) -> threading.Thread:
    """Answer every connection on `listener` until it stops listening, over TLS with `tls`;
    a daemon thread."""
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def answer(connection: socket.socket, address: Any) -> None:
        try:
            if tls is not None:
                connection.settimeout(REQUEST_SECONDS)  # a client that never shakes hands
                connection = tls.wrap_socket(connection, server_side=True)
            MissingWorkersAnswer(connection, address, message)
        except OSError:
            pass  # the client went away: nothing to answer
        finally:
            connection.close()
            slots.release()

    def run() -> None:
        while is_listening(listener):
            readable, _, _ = select.select([listener], [], [], POLL_SECONDS)
            if not readable or not slots.acquire(timeout=POLL_SECONDS):
                continue
            try:
                connection, address = listener.accept()
            except OSError:  # taken already, or the listener stopped (checked above)
                slots.release()
                continue
            threading.Thread(target=answer, args=(connection, address), daemon=True).start()

    thread = threading.Thread(target=run, name="edgeserve-no-workers", daemon=True)
    thread.start()
    return thread


class MissingWorkersAnswer(BaseHTTPRequestHandler):
    """One connection, one answer: 503 `missing_workers` in the error envelope, whatever was
    asked (a malformed request included), with Trace-Id, then the connection closes."""

    protocol_version = "HTTP/1.1"
    timeout = REQUEST_SECONDS

    def __init__(self, connection: socket.socket, address: Any, message: str) -> None:
        self.message = message
        super().__init__(connection, address, None)

    def handle(self) -> None:
        self.close_connection = True
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            return
        if self.parse_request():  # on failure it calls send_error, answered the same way
            self.discard_body()
            self.answer()

    def discard_body(self) -> None:
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) <= MAX_DISCARDED_BODY:
            self.rfile.read(int(length))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        self.answer()

    def answer(self) -> None:
        received = getattr(self, "headers", None)  # absent when the request line was malformed
        headers = {name.lower(): value for name, value in (received or {}).items()}
        self.request_version = self.protocol_version  # a status line even for a garbled request
        trace_id = trace_id_from(headers)
        body = orjson.dumps(envelope(CODE, self.message, trace_id))
        self.send_response_only(status_of(CODE))
        for name, value in (
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Trace-Id", trace_id),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ):
            self.send_header(name, value)
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the watchdog logged why once (worker_not_replaced); a line per probe adds
        nothing."""
