"""A drain under keep-alive load loses nothing.

Rule: once SIGTERM (or SIGINT) reaches the server's process group, every request written on an
open connection is answered, the answers from then on say `Connection: close`, and new
connections are refused. Counted from the client side: a request written whose answer never
came is lost; a connection refused before a request was written is not. The process exits 0
within GRACEFUL_SHUTDOWN_SECONDS and prints no traceback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.support.images import image_b64
from tests.support.server import base_env, start_server, stop_server
from tests.support.waiting import wait_until

CLIENTS = 8
RUNS = 5
GRACE = 10.0
BODY = json.dumps({"image_b64": image_b64((255, 0, 0), size=200)})
HEADERS = {"Content-Type": "application/json"}


@dataclass
class Tally:
    """What the clients of one run saw, request by request."""

    outcomes: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str, lost: str | None = None) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            if lost is not None:
                self.lost.append(lost)


def client_loop(url: str, tally: Tally, deadline: float) -> None:
    """One client sending requests back to back on its own keep-alive connection; after a
    `Connection: close` answer (or a lost request) it reconnects, until it is refused."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=GRACE + 5)
    while time.monotonic() < deadline:
        if connection.sock is None:
            try:
                connection.connect()
            except OSError:
                tally.add("refused")  # nothing was written: the server is gone, stop
                return
        try:
            connection.request("POST", "/v1/infer", BODY, HEADERS)
        except OSError:
            tally.add("closed_before_written")
            connection.close()
            continue
        try:
            response = connection.getresponse()
            response.read()
        except (http.client.HTTPException, OSError) as error:
            tally.add("lost", lost=repr(error))  # written, never answered
            connection.close()
            continue
        closing = (response.getheader("connection") or "").lower() == "close"
        tally.add(f"{response.status}{' close' if closing else ''}")
        if closing:
            connection.close()
    connection.close()


def drain_once(workers: int, sig: int) -> tuple[Tally, int, float, str]:
    """Start a server, load it with keep-alive clients, signal its process group, and answer
    what the clients saw, the exit code, how long the drain took and the server's output."""
    server = start_server(base_env(WORKERS=str(workers), GRACEFUL_SHUTDOWN_SECONDS=str(GRACE)))
    tally = Tally()
    deadline = time.monotonic() + GRACE + 20
    threads = [
        threading.Thread(target=client_loop, args=(server.url, tally, deadline))
        for _ in range(CLIENTS)
    ]
    try:
        for thread in threads:
            thread.start()
        wait_until(
            f"{2 * CLIENTS} answers before the signal",
            lambda: tally.outcomes["200"],
            lambda answered: answered >= 2 * CLIENTS,
            timeout=30,
            context=lambda: server.output()[-3000:],
        )
        os.killpg(server.process.pid, sig)  # as systemd does: the whole process group
        signalled = time.monotonic()
        exit_code = server.process.wait(GRACE + 10)
        took = time.monotonic() - signalled
        for thread in threads:
            thread.join(GRACE + 10)
    finally:
        stop_server(server)
    return tally, exit_code, took, server.output()


@pytest.mark.parametrize(
    ("workers", "sig", "runs"),
    [
        (1, signal.SIGTERM, RUNS),
        (2, signal.SIGTERM, RUNS),
        (1, signal.SIGINT, 1),
        (2, signal.SIGINT, 1),
    ],
    ids=["1-worker-sigterm", "2-workers-sigterm", "1-worker-sigint", "2-workers-sigint"],
)
def test_a_group_signal_answers_every_request_written_on_an_open_connection(
    workers: int, sig: int, runs: int
):
    figures = []
    for run in range(runs):
        tally, exit_code, took, output = drain_once(workers, sig)
        figures.append((run, len(tally.lost), dict(tally.outcomes)))
        assert not tally.lost, (run, tally.lost, dict(tally.outcomes), output[-3000:])
        statuses = {outcome for outcome in tally.outcomes if outcome[0].isdigit()}
        assert statuses <= {"200", "200 close"}, tally.outcomes
        assert tally.outcomes["200 close"] >= 1, tally.outcomes  # the drain said so
        assert exit_code == 0, output[-3000:]
        assert took < GRACE, took
        for word in ("Traceback", "KeyboardInterrupt"):
            assert word not in output, output[-5000:]
    print(figures)


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_request_on_a_connection_idle_when_the_drain_began_is_answered_with_close():
    server = start_server(base_env(GRACEFUL_SHUTDOWN_SECONDS=str(GRACE)))
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=GRACE)
    try:
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        first.read()
        assert first.getheader("connection") == "keep-alive", first.headers
        os.killpg(server.process.pid, signal.SIGTERM)
        wait_until("new connections to be refused", lambda: refused(server.url), timeout=5)
        connection.request("GET", "/healthz")  # on the connection that was idle
        second = connection.getresponse()
        second.read()
        exit_code = server.process.wait(GRACE)
    finally:
        connection.close()
        stop_server(server)
    assert second.status == 200, second.status
    assert second.getheader("connection") == "close", second.headers
    assert exit_code == 0, server.output()[-3000:]


def test_a_connection_that_stays_idle_is_closed_cleanly_without_waiting_for_the_grace_period():
    server = start_server(base_env(WORKERS="2", GRACEFUL_SHUTDOWN_SECONDS=str(GRACE)))
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=GRACE)
    try:
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        os.killpg(server.process.pid, signal.SIGTERM)
        signalled = time.monotonic()
        end_of_stream = connection.sock.recv(1)  # FIN: the server closed it, nothing pending
        closed_after = time.monotonic() - signalled
        exit_code = server.process.wait(GRACE)
    finally:
        connection.close()
        stop_server(server)
    assert end_of_stream == b"", end_of_stream
    assert closed_after < GRACE / 2, closed_after
    assert exit_code == 0, server.output()[-3000:]
