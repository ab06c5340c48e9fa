"""Binary uploads: the raw file as the body gives the same answer, headers and errors as JSON.

Each case is one image and its fields, sent both ways to the same real server; the two
answers must match in status, body (but the per-request trace id and timings) and headers.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.server.test_bad_input import gif_b64, huge_png_header_b64, truncated_png_b64
from tests.support.images import ORANGE, image_bytes
from tests.support.server import running_server

RED_PNG = image_bytes((255, 0, 0))


@dataclass(frozen=True)
class Case:
    """One image with its fields; `upload_type` is the Content-Type of the binary form."""

    image: bytes
    fields: dict[str, Any] = field(default_factory=dict)
    upload_type: str = "image/png"
    headers: dict[str, str] = field(default_factory=dict)


def b64_bytes(text: str) -> bytes:
    return base64.b64decode(text)


CASES = {
    "png": Case(RED_PNG),
    "jpeg": Case(image_bytes((0, 0, 255), "JPEG"), upload_type="image/jpeg"),
    "octet_stream": Case(image_bytes(ORANGE), upload_type="application/octet-stream"),
    "content_type_parameters": Case(RED_PNG, upload_type="image/png; name=red.png"),
    "top_k_and_img_size": Case(image_bytes((0, 160, 0)), {"top_k": 3, "img_size": 32}),
    "request_id_is_the_trace_id": Case(RED_PNG, headers={"X-Request-ID": "binary-vs-json-1"}),
    "text_not_image": Case(b"hello, I am text"),
    "gif": Case(b64_bytes(gif_b64()), upload_type="application/octet-stream"),
    "truncated_png": Case(b64_bytes(truncated_png_b64())),
    "decompression_bomb": Case(b64_bytes(huge_png_header_b64())),
    "img_size_zero": Case(RED_PNG, {"img_size": 0}),
    "img_size_huge": Case(RED_PNG, {"img_size": 100000}),
    "top_k_negative": Case(RED_PNG, {"top_k": -1}),
    "top_k_too_large": Case(RED_PNG, {"top_k": 1001}),
    "unknown_field": Case(RED_PNG, {"colour": "red"}),
}
# Where the two forms must name what they carry the message differs; status and code do not.
CARRIER_MESSAGES = {"unknown_field"}
PER_REQUEST = ("trace_id", "timings_ms")
# Headers whose value is per request or per body; their presence must still match.
VARYING_HEADERS = {"trace-id", "set-cookie", "content-length"}


def send_json(client: httpx.Client, case: Case) -> httpx.Response:
    body = {"image_b64": base64.b64encode(case.image).decode(), **case.fields}
    return client.post("/v1/infer", json=body, headers=case.headers)


def send_binary(client: httpx.Client, case: Case) -> httpx.Response:
    headers = {"Content-Type": case.upload_type, **case.headers}
    params = {name: str(value) for name, value in case.fields.items()}
    return client.post("/v1/infer", content=case.image, params=params, headers=headers)


def comparable(response: httpx.Response) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = {k: v for k, v in response.json().items() if k not in PER_REQUEST}
    headers = {
        name: ("<varies>" if name in VARYING_HEADERS else value)
        for name, value in response.headers.items()
    }
    return response.status_code, body, headers


@pytest.mark.parametrize("case", sorted(CASES))
def test_binary_upload_answers_exactly_as_the_json_form(server, case):
    # A client each, so neither sends the sticky cookie the other was given.
    with server.client() as json_client, server.client() as binary_client:
        json_form = send_json(json_client, CASES[case])
        binary_form = send_binary(binary_client, CASES[case])
    status, body, headers = comparable(binary_form)
    expected_status, expected_body, expected_headers = comparable(json_form)
    if case in CARRIER_MESSAGES:
        body["error"].pop("message")
        expected_body["error"].pop("message")
    assert (status, body) == (expected_status, expected_body), binary_form.text
    assert headers == expected_headers
    assert binary_form.headers["Trace-Id"] == binary_form.json()["trace_id"]
    if "X-Request-ID" in CASES[case].headers:
        assert binary_form.headers["Trace-Id"] == CASES[case].headers["X-Request-ID"]


def test_binary_upload_sets_the_sticky_cookie_as_the_json_form_does(server):
    with server.client() as client:
        r = send_binary(client, CASES["png"])
    assert r.status_code == 200, r.text
    assert "edgeserve_ab=" in r.headers["set-cookie"], r.headers


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("top_k=abc", "invalid_field"),
        ("top_k=", "invalid_field"),
        ("top_k=1.5", "invalid_field"),
        ("top_k=1&top_k=2", "invalid_field"),
        ("img_size=7", "invalid_field"),
        ("size=224", "unknown_field"),
    ],
)
def test_bad_query_parameters_get_422_with_the_json_fields_codes(server, query, code):
    with server.client() as client:
        r = client.post(
            f"/v1/infer?{query}", content=RED_PNG, headers={"Content-Type": "image/png"}
        )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code, r.text


def test_query_numbers_read_like_json_numbers(server):
    with server.client() as client:
        r = client.post(
            "/v1/infer?top_k=2&img_size=16", content=RED_PNG, headers={"Content-Type": "image/png"}
        )
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2


def test_empty_body_is_400_empty_image_like_an_empty_image_b64(server):
    with server.client() as client:
        binary_form = client.post("/v1/infer", content=b"", headers={"Content-Type": "image/png"})
        json_form = client.post("/v1/infer", json={"image_b64": ""})
    assert binary_form.status_code == json_form.status_code == 400, binary_form.text
    assert binary_form.json()["error"]["code"] == json_form.json()["error"]["code"]


@pytest.mark.parametrize("content_type", ["text/plain", "image/gif", "multipart/form-data", ""])
def test_an_unsupported_content_type_gets_415(server, content_type):
    with server.client() as client:
        r = client.post("/v1/infer", content=RED_PNG, headers={"Content-Type": content_type})
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert "image/png" in r.json()["error"]["message"]


@pytest.fixture(scope="module")
def small_limits():
    with running_server(MAX_BODY_BYTES="20000", MAX_IMAGE_PIXELS="10000") as server:
        yield server


@pytest.mark.parametrize(
    ("image", "status", "code"),
    [
        (image_bytes((255, 0, 0), size=400), 413, "payload_too_large"),
        (image_bytes((255, 0, 0), size=101), 422, "image_too_large"),
    ],
    ids=["max_body_bytes", "max_image_pixels"],
)
def test_body_and_pixel_limits_apply_to_both_forms(small_limits, image, status, code):
    # The raw file is 3/4 of its base64: make it too large on its own, not only in JSON.
    case = Case(image + b"\0" * 20000 if status == 413 else image)
    with small_limits.client() as json_client, small_limits.client() as binary_client:
        json_form = send_json(json_client, case)
        binary_form = send_binary(binary_client, case)
    assert comparable(binary_form)[:2] == comparable(json_form)[:2], binary_form.text
    assert (binary_form.status_code, binary_form.json()["error"]["code"]) == (status, code)


def test_rate_limit_counts_both_forms_in_one_bucket():
    with running_server(RATE_LIMIT_RPS="0.01", RATE_LIMIT_BURST="2") as server:
        with server.client() as json_client, server.client() as binary_client:
            allowed = [
                send_json(json_client, CASES["png"]),
                send_binary(binary_client, CASES["png"]),
            ]
            refused = [
                send_json(json_client, CASES["png"]),
                send_binary(binary_client, CASES["png"]),
            ]
    assert [r.status_code for r in allowed + refused] == [200, 200, 429, 429]
    json_form, binary_form = (comparable(r) for r in refused)
    assert binary_form == json_form
