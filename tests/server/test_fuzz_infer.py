"""Property: whatever body or image bytes a client sends to /v1/infer, the answer is never a
5xx, and every refusal is the JSON error envelope (hypothesis against a real server)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.images import image_bytes
from tests.support.server import running_server

SEEDS = [
    image_bytes((255, 0, 0), "PNG", 48),
    image_bytes((0, 128, 255), "JPEG", 48),
    image_bytes((10, 200, 30), "PNG", 300),
]
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@st.composite
def damaged_images(draw) -> bytes:
    """A real PNG or JPEG with bytes flipped, cut, or repeated: what a broken upload looks like."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data)))
        data[start:start] = data[start : start + draw(st.integers(0, 64))] * draw(st.integers(1, 4))
    return bytes(data)


image_fields = st.one_of(
    damaged_images().map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=256).map(lambda b: base64.b64encode(b).decode()),
    st.text(max_size=64),
)
infer_bodies = st.one_of(
    st.fixed_dictionaries(
        {"image_b64": image_fields},
        optional={"img_size": json_values | st.integers(), "top_k": json_values | st.integers()},
    ),
    st.dictionaries(st.sampled_from(["image_b64", "img_size", "top_k", "x"]), json_values),
    json_values,
)


@pytest.fixture(scope="module")
def client():
    with running_server() as server, server.client() as client:
        yield client


def assert_refused_cleanly(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"], response.text


@FUZZ
@given(body=infer_bodies)
def test_no_json_body_causes_a_server_error(client, body):
    assert_refused_cleanly(client.post("/v1/infer", json=body))


@FUZZ
@given(raw=st.binary(max_size=512) | json_values.map(lambda v: json.dumps(v).encode()))
def test_no_raw_body_causes_a_server_error(client, raw):
    headers = {"Content-Type": "application/json"}
    assert_refused_cleanly(client.post("/v1/infer", content=raw, headers=headers))


@FUZZ
@given(image=damaged_images(), top_k=st.integers(1, 10))
def test_no_damaged_image_causes_a_server_error(client, image, top_k):
    body = {"image_b64": base64.b64encode(image).decode(), "top_k": top_k}
    assert_refused_cleanly(client.post("/v1/infer", json=body))
