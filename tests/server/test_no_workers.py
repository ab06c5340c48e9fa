"""The main process's stand-in once no worker is left: 503 `missing_workers` to anything, in the
error envelope with Trace-Id, until the listener stops (the drain). In-process, on a local
socket."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest

from edgeserve.server.listener import stop_listening
from edgeserve.server.no_workers import answer_while_no_workers
from tests.support.tls import make_test_ca


@pytest.fixture
def stand_in() -> Iterator[tuple[str, socket.socket]]:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = answer_while_no_workers(listener, "no worker left: replace this instance")
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", listener
    stop_listening(listener)
    thread.join(5)
    listener.close()


def test_every_request_gets_503_missing_workers_in_the_envelope_with_its_trace_id(stand_in):
    url, _ = stand_in
    r = httpx.post(url + "/v1/infer", json={"image_b64": "x"}, headers={"X-Request-ID": "abc"})
    assert r.status_code == 503, r.text
    assert r.json() == {
        "error": {"code": "missing_workers", "message": "no worker left: replace this instance"},
        "trace_id": "abc",
    }
    assert r.headers["trace-id"] == "abc" and r.headers["connection"] == "close", r.headers


def test_a_garbled_request_still_gets_a_503_status_line(stand_in):
    url, _ = stand_in
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"\x01\x02 nonsense\r\n\r\n")
        answer = b""
        while chunk := client.recv(4096):  # headers and body may come apart; read to the close
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert b'"missing_workers"' in answer and b"Trace-Id: " in answer, answer


def test_once_the_listener_stops_the_stand_in_ends(stand_in):
    url, listener = stand_in
    stop_listening(listener)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/ready", timeout=2)


def test_on_an_https_port_the_stand_in_answers_over_tls(tmp_path):
    ca = make_test_ca(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(ca.server.cert, ca.server.key)
    listener = socket.create_server(("127.0.0.1", 0))
    thread = answer_while_no_workers(listener, "no worker left: replace this instance", tls)
    try:
        url = f"https://localhost:{listener.getsockname()[1]}/ready"
        r = httpx.get(url, verify=ssl.create_default_context(cafile=ca.ca.cert), timeout=5)
    finally:
        stop_listening(listener)
        thread.join(5)
        listener.close()
    assert r.status_code == 503 and r.json()["error"]["code"] == "missing_workers", r.text
