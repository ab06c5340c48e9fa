"""POST /v1/infer answers in the shape docs/operations.md section 2 gives."""

from __future__ import annotations

import pytest

from tests.support.images import ORANGE, image_b64

COLOURS = {"red": (255, 0, 0), "green": (0, 160, 0), "blue": (0, 0, 255)}


SERVER_OF_VARIANT = {"A": "server", "B": "b_server"}


@pytest.mark.parametrize("variant", sorted(SERVER_OF_VARIANT))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("label", sorted(COLOURS))
def test_primary_colours_are_classified_by_both_variants(request, variant, label, fmt):
    server = request.getfixturevalue(SERVER_OF_VARIANT[variant])
    with server.client() as client:
        r = client.post("/v1/infer", json={"image_b64": image_b64(COLOURS[label], fmt)})
    assert r.status_code == 200, r.text
    assert r.json()["variant"] == variant
    assert r.json()["predictions"][0]["label"] == label, r.text


def test_orange_is_orange_for_b_and_not_for_a(server, b_server):
    body = {"image_b64": image_b64(ORANGE)}
    with server.client() as a, b_server.client() as b:
        a_top = a.post("/v1/infer", json=body).json()["predictions"][0]["label"]
        b_top = b.post("/v1/infer", json=body).json()["predictions"][0]["label"]
    assert (a_top, b_top) == ("yellow", "orange")


def test_answer_has_the_documented_shape(server):
    with server.client() as client:
        r = client.post("/v1/infer", json={"image_b64": image_b64((255, 0, 0)), "top_k": 3})
    body = r.json()
    assert set(body) == {"variant", "model", "predictions", "timings_ms", "trace_id"}, body
    assert body["model"]["name"] == "vA"
    assert len(body["model"]["version"]) == 12
    assert [set(p) for p in body["predictions"]] == [{"index", "label", "score"}] * 3
    assert set(body["timings_ms"]) == {"decode", "inference", "total"}
    assert body["trace_id"] == r.headers["Trace-Id"]
    assert r.headers["X-Edgeserve-Variant"] == "A"


def test_top_k_is_sorted_by_score(server):
    with server.client() as client:
        r = client.post("/v1/infer", json={"image_b64": image_b64((200, 30, 40)), "top_k": 8})
    scores = [p["score"] for p in r.json()["predictions"]]
    assert len(scores) == 8 and scores == sorted(scores, reverse=True), scores


def test_data_url_prefix_is_accepted(server):
    body = {"image_b64": "data:image/png;base64," + image_b64((0, 0, 255))}
    with server.client() as client:
        r = client.post("/v1/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] == "blue"


def test_img_size_is_honoured(server):
    with server.client() as client:
        r = client.post("/v1/infer", json={"image_b64": image_b64((0, 160, 0)), "img_size": 224})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] == "green"
