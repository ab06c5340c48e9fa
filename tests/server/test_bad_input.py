"""Every bad input gets a precise 4xx with a snake_case code, and the server keeps serving."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from tests.support.images import image_b64, image_bytes

JSON = {"Content-Type": "application/json"}


def gif_b64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, "GIF")
    return base64.b64encode(buffer.getvalue()).decode()


def huge_png_header_b64() -> str:
    """A PNG whose IHDR claims 30000x30000 pixels, with one tiny IDAT: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return base64.b64encode(png + chunk(b"IEND", b"")).decode()


def truncated_png_b64() -> str:
    return base64.b64encode(image_bytes((255, 0, 0), size=128)[:-40]).decode()


RED = image_b64((255, 0, 0))
CASES = {
    "not_json": ({"content": b"{not json", "headers": JSON}, 400, "invalid_json"),
    "json_array": ({"content": b"[1, 2]", "headers": JSON}, 400, "invalid_json"),
    "missing_image": ({"json": {"top_k": 3}}, 422, "missing_field"),
    "image_not_string": ({"json": {"image_b64": 42}}, 422, "invalid_field"),
    "bad_base64": ({"json": {"image_b64": "@@@not-base64@@@"}}, 400, "invalid_base64"),
    "empty_string": ({"json": {"image_b64": ""}}, 400, "empty_image"),
    "text_not_image": (
        {"json": {"image_b64": base64.b64encode(b"hello, I am text").decode()}},
        422,
        "not_an_image",
    ),
    "gif": ({"json": {"image_b64": gif_b64()}}, 422, "unsupported_image_format"),
    "truncated_png": ({"json": {"image_b64": truncated_png_b64()}}, 422, "truncated_image"),
    "decompression_bomb": ({"json": {"image_b64": huge_png_header_b64()}}, 422, "image_too_large"),
    "img_size_zero": ({"json": {"image_b64": RED, "img_size": 0}}, 422, "invalid_field"),
    "img_size_huge": ({"json": {"image_b64": RED, "img_size": 100000}}, 422, "invalid_field"),
    "img_size_string": ({"json": {"image_b64": RED, "img_size": "224"}}, 422, "invalid_field"),
    "top_k_negative": ({"json": {"image_b64": RED, "top_k": -1}}, 422, "invalid_field"),
    "unknown_field": ({"json": {"image_b64": RED, "colour": "red"}}, 422, "unknown_field"),
    "wrong_content_type": (
        {"content": b'{"image_b64": "x"}', "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_a_precise_4xx_and_the_server_keeps_serving(server, case):
    request, status, code = CASES[case]
    with server.client() as client:
        r = client.post("/v1/infer", **request)
        assert r.status_code == status, r.text
        body = r.json()
        assert body["error"]["code"] == code, body
        assert body["error"]["message"] and "Traceback" not in r.text
        assert body["trace_id"] == r.headers["Trace-Id"]
        assert client.post("/v1/infer", json={"image_b64": RED}).status_code == 200


def test_body_over_max_body_bytes_gets_413_in_the_envelope(server):
    with server.client() as client:
        r = client.post("/v1/infer", content=b"x" * 8_388_609, headers=JSON)
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "payload_too_large"
        assert r.headers["Trace-Id"]
        assert client.post("/v1/infer", json={"image_b64": RED}).status_code == 200
