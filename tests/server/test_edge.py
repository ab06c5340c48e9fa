"""The HTTP edge holds against hostile and broken clients: the right 4xx, never a 5xx."""

from __future__ import annotations

import base64
import io
import socket
import struct
import zlib

import httpx
import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.support.images import image_b64
from tests.support.metrics import metric_sum
from tests.support.server import Server
from tests.support.waiting import wait_until

RED = {"image_b64": image_b64((255, 0, 0))}


def raw_exchange(server: Server, data: bytes, wait: float = 5.0) -> bytes:
    """Send `data` on a fresh socket and read until the server closes or `wait` passes."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                    break
        except TimeoutError:
            pass
    return answer


def status_and_code(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, httpx.Response(200, content=body).json()["error"]["code"] if body else ""


def series_count(server: Server, name: str) -> int:
    with server.client() as client:
        text = client.get("/metrics").text
    return sum(
        1
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def test_made_up_methods_and_paths_add_no_metric_series(server):
    def send_junk(count: int, offset: int) -> None:
        with server.client() as client:
            for i in range(offset, offset + count):
                client.request(f"X{i:05d}METHOD", f"/made/up/{i}")
                client.get(f"/nowhere/{i}")

    send_junk(3, 0)  # the first ones may add the "other" and "unmatched" series once
    series_count(server, "edgeserve_http_requests_total")  # and the scrape its own
    before = series_count(server, "edgeserve_http_requests_total")
    send_junk(300, 1000)
    after = series_count(server, "edgeserve_http_requests_total")
    assert after == before, f"{after - before} new series from made-up methods and paths"
    assert metric_sum(server, "edgeserve_http_requests_total", method="other") >= 303


def test_a_non_utf8_authorization_header_is_a_401(server):
    with server.client() as client:
        r = client.get("/admin/config", headers={"Authorization": b"Bearer \xff\xfe\xfd"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"


def test_every_answer_says_nosniff_and_admin_answers_are_not_stored(server):
    with server.client() as client, server.admin() as admin:
        answers = [client.get("/healthz"), client.get("/nowhere"), admin.get("/admin/config")]
    assert all(r.headers.get("x-content-type-options") == "nosniff" for r in answers)
    assert answers[2].headers.get("cache-control") == "no-store", answers[2].headers
    assert "cache-control" not in answers[0].headers


def test_an_oversized_header_is_431(server):
    answer = raw_exchange(
        server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    )
    assert status_and_code(answer) == (431, "headers_too_large"), answer[:300]


def test_an_oversized_url_is_414(server):
    answer = raw_exchange(server, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_and_code(answer) == (414, "uri_too_long"), answer[:300]


def test_a_control_byte_in_the_target_is_400_without_a_traceback(server):
    answer = raw_exchange(server, b"GET /heal\x01thz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_and_code(answer) == (400, "invalid_request_target"), answer[:300]
    with server.client() as client:
        assert client.get("/healthz").status_code == 200
    assert "connection_task uncaught" not in server.output()


def test_a_compressed_body_is_415(server):
    with server.client() as client:
        r = client.post(
            "/v1/infer",
            content=zlib.compress(b'{"image_b64": "x"}'),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_content_encoding"


def test_a_compressed_upload_is_415(server):
    with server.client() as client:
        r = client.post(
            "/v1/infer",
            content=zlib.compress(base64.b64decode(RED["image_b64"])),
            headers={"Content-Type": "image/png", "Content-Encoding": "deflate"},
        )
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_content_encoding"


def png_with_huge_text_chunk() -> str:
    """A valid PNG whose zTXt chunk inflates past Pillow's MAX_TEXT_CHUNK (1 MB)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, "PNG")
    png = buffer.getvalue()
    data = b"comment\0\0" + zlib.compress(b"a" * 2_000_000)
    chunk = struct.pack(">I", len(data)) + b"zTXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + data))
    ihdr_end = 8 + 25
    return base64.b64encode(png[:ihdr_end] + chunk + png[ihdr_end:]).decode()


def test_a_png_with_an_oversized_text_chunk_is_not_called_truncated(server):
    with server.client() as client:
        r = client.post("/v1/infer", json={"image_b64": png_with_huge_text_chunk()})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "image_metadata_too_large"


def noisy_png(size: int) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def test_a_client_that_hangs_up_mid_request_is_499_not_500(server):
    body = b'{"image_b64": "' + base64.b64encode(noisy_png(1200)) + b'"}'
    head = (
        f"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    errors_before = metric_sum(server, "edgeserve_http_requests_total", status="500")
    host, port = server.url.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head + body)
            # Hang up hard (RST), as a client process that dies does, while the server works.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wait_until(
        "3 requests counted as 499",
        lambda: metric_sum(server, "edgeserve_http_requests_total", status="499"),
        lambda closed: closed >= 3,
        timeout=30,
        interval=0.2,
        context=lambda: server.output()[-3000:],
    )
    assert metric_sum(server, "edgeserve_http_requests_total", status="500") == errors_before
    assert '"client_closed_request"' in server.output()
