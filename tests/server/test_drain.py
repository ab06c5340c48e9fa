"""Drain under keep-alive load loses nothing.

Rule: once SIGTERM arrives, every request the server reads is answered (with Connection: close),
and a request it never read may only meet a clean close (or a refused connection): no 5xx, no
reset mid-answer, no answer the server logged that a client did not get. The process exits 0
within GRACEFUL_SHUTDOWN_SECONDS."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time

from tests.support.images import image_b64
from tests.support.server import base_env, start_server, stop_server
from tests.support.waiting import wait_until

CLIENTS = 8
GRACE = 10.0
BODY = {"image_b64": image_b64((255, 0, 0), size=600)}


def client_loop(url: str, stop: threading.Event, outcomes: list[str]) -> None:
    """One keep-alive client sending requests back to back until the server goes away.

    http.client shows whether a request went on a reused connection: a failure on a new one
    means it was never served (refused, or reset from the listen backlog); on a reused one
    only a clean close (end of stream, no answer) is allowed."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps(BODY)
    headers = {"Content-Type": "application/json"}
    while not stop.is_set():
        reused = connection.sock is not None
        try:
            connection.request("POST", "/v1/infer", body, headers)
            response = connection.getresponse()
            response.read()
        except ConnectionRefusedError:
            outcomes.append("refused")
            return
        except (http.client.RemoteDisconnected, ConnectionError, OSError) as error:
            connection.close()
            if not reused:
                outcomes.append("refused")
                return
            clean = isinstance(error, http.client.RemoteDisconnected)
            outcomes.append("closed_unread" if clean else f"broken: {error!r}")
            continue
        outcomes.append(str(response.status))
        if response.getheader("connection") == "close":
            connection.close()


def test_sigterm_under_keep_alive_load_answers_everything_it_read_and_exits_0():
    server = start_server(base_env(WORKERS="2", GRACEFUL_SHUTDOWN_SECONDS=str(GRACE)))
    outcomes: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=client_loop, args=(server.url, stop, outcomes))
        for _ in range(CLIENTS)
    ]
    try:
        for thread in threads:
            thread.start()
        wait_until(
            f"{4 * CLIENTS} answers before SIGTERM",
            lambda: outcomes.count("200"),
            lambda answered: answered >= 4 * CLIENTS,
            timeout=30,
        )
        os.kill(server.process.pid, signal.SIGTERM)
        signalled = time.monotonic()
        exit_code = server.process.wait(GRACE + 10)
        took = time.monotonic() - signalled
        stop.set()
        for thread in threads:
            thread.join(35)
    finally:
        stop.set()
        stop_server(server)
    bad = [outcome for outcome in outcomes if outcome not in ("200", "refused", "closed_unread")]
    assert not bad, bad
    answered = [
        line
        for line in server.output().splitlines()
        if '"route": "/v1/infer"' in line and json.loads(line)["status"] == 200
    ]
    assert len(answered) == outcomes.count("200"), (len(answered), outcomes.count("200"))
    assert exit_code == 0, server.output()[-3000:]
    assert took < GRACE, took
    assert server.output().count('"event": "worker_stopped"') == 2, server.output()[-3000:]
