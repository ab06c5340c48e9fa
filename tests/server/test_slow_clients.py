"""Slow or stalled clients get 408 within whole deadlines; open connections are capped."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.server.test_edge import status_and_code
from tests.support.metrics import metric_sum
from tests.support.server import running_server
from tests.support.waiting import wait_until

DEADLINE = 1.5
CAP = 20
ESTABLISHED = "01"  # the state column of /proc/net/tcp


@pytest.fixture(scope="module")
def server():
    env = {
        "HEADER_TIMEOUT_SECONDS": str(DEADLINE),
        "BODY_TIMEOUT_SECONDS": str(DEADLINE),
        "MAX_CONNECTIONS": str(CAP),
    }
    with running_server(**env) as server:
        yield server


def connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def server_side(server) -> list[tuple[bool, int]]:
    """(accepted, bytes unread) of each established connection to the server, from the kernel's
    table: a connection still in the listen backlog has no inode yet, read data leaves the queue."""
    port = int(server.url.rsplit(":", 1)[1])
    connections = []
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, state, queues, inode = fields[1], fields[3], fields[4], fields[9]
        if int(local.split(":")[1], 16) == port and state == ESTABLISHED:
            connections.append((inode != "0", int(queues.split(":")[1], 16)))
    return connections


def wait_until_read(server, count: int) -> None:
    """Until the worker has accepted `count` connections and read all they sent."""
    wait_until(
        f"the worker to accept and read {count} connections (accepted, bytes unread)",
        lambda: server_side(server),
        lambda seen: (
            len(seen) >= count and all(accepted and not unread for accepted, unread in seen)
        ),
    )


def trickle_until_answered(sock: socket.socket, pieces: list[bytes], every: float) -> bytes:
    """Send one piece every `every` seconds until the server answers; return the answer."""
    sock.setblocking(False)
    answer = b""
    for piece in pieces:
        try:
            sock.send(piece)
        except OSError:
            break
        end = time.monotonic() + every
        while time.monotonic() < end:
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                time.sleep(0.02)
                continue
            if not chunk:
                return answer
            answer += chunk
    return answer


def test_headers_trickled_past_the_header_deadline_get_408(server):
    started = time.monotonic()
    with connect(server) as sock:
        lines = [b"GET /healthz HTTP/1.1\r\n"] + [b"X-Slow-%d: 1\r\n" % i for i in range(100)]
        answer = trickle_until_answered(sock, lines, every=0.2)
    took = time.monotonic() - started
    assert status_and_code(answer) == (408, "request_timeout"), answer[:300]
    assert DEADLINE <= took < DEADLINE + 3, took


def test_a_body_trickled_past_the_body_deadline_gets_408(server):
    head = (
        b"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    started = time.monotonic()
    with connect(server) as sock:
        answer = trickle_until_answered(sock, [head] + [b" "] * 100, every=0.2)
    took = time.monotonic() - started
    assert status_and_code(answer) == (408, "request_timeout"), answer[:300]
    assert DEADLINE <= took < DEADLINE + 3, took


def test_a_stalled_body_gets_408_not_503(server):
    head = b"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with connect(server) as sock:
        answer = trickle_until_answered(sock, [head + b"Content-Length: 10\r\n\r\n{"], every=8)
    assert status_and_code(answer) == (408, "request_timeout"), answer[:300]
    assert metric_sum(server, "edgeserve_http_requests_total", route="/v1/infer", status="503") == 0


def test_at_the_cap_an_idle_connection_gives_way_to_a_new_client(server):
    closed_before = metric_sum(server, "edgeserve_connections_closed_total", reason="idle_at_cap")
    with ExitStack() as stack:
        for _ in range(CAP):
            stack.enter_context(connect(server))
        wait_until_read(server, CAP)
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
    closed = metric_sum(server, "edgeserve_connections_closed_total", reason="idle_at_cap")
    assert closed > closed_before


def test_at_the_cap_with_no_idle_connection_a_new_one_is_refused_and_counted(server):
    with ExitStack() as stack:
        for _ in range(CAP):
            sock = stack.enter_context(connect(server))
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # busy: a request is on its way
        wait_until_read(server, CAP)
        with connect(server) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = extra.recv(65536)
    assert status_and_code(answer) == (503, "overloaded"), answer[:300]
    assert metric_sum(server, "edgeserve_connections_closed_total", reason="refused_at_cap") >= 1
    assert '"connection_refused"' in server.output()
