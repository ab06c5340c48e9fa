"""The listening socket: bound once by the main process and shared by every worker.

One socket for the whole instance means one switch: once it stops listening, new connections
are refused in every process at once, and a main process left without workers can still
answer on it."""

from __future__ import annotations

import socket
from contextlib import suppress
from typing import Any

from sanic.server.socket import bind_socket

from edgeserve.settings import Settings

BACKLOG = 100  # Sanic's own default


class ListenError(Exception):
    """The address cannot be listened on (in use, not local, no permission)."""


def bind(settings: Settings) -> socket.socket:
    """Listen on HOST:PORT, or fail with one line saying what to change."""
    try:
        return bind_socket(settings.host, settings.port, backlog=BACKLOG)
    except OSError as error:
        raise ListenError(
            f"cannot listen on {settings.host}:{settings.port} ({error.strerror}): "
            "stop what holds the port or choose another PORT / HOST"
        ) from None


def of_app(app: Any) -> socket.socket | None:
    """The listening socket Sanic handed this process (the same object its server accepts on)."""
    for info in app.state.server_info:
        sock = info.settings.get("sock")
        if sock is not None:
            return sock
    return None


def is_listening(sock: socket.socket) -> bool:
    """Whether the socket still takes new connections, in whichever process stopped it."""
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:  # closed in this process
        return False


def stop_listening(sock: socket.socket) -> None:
    """Refuse new connections from now on, in every process that shares the socket.

    shutdown(SHUT_RD) moves the shared socket itself out of LISTEN (close() would only drop
    this process's handle while the others keep it listening)."""
    with suppress(OSError):  # already stopped
        sock.shutdown(socket.SHUT_RD)
