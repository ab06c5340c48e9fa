"""Open Inference Protocol requests the model cannot take: a 4xx in the protocol's error shape,
{"error": "..."}, with our catalogue code in X-Edgeserve-Error-Code; never a 5xx."""

from __future__ import annotations

import struct

import orjson

from tests.support.images import image_bytes
from tests.support.metrics import metric_sum

INFER = "/v2/models/edgeserve/infer"
A_SHAPE = [1, 3, 64, 64]  # the demo model A's input


def fp32(shape: list[int], data: list[float] | None = None) -> dict:
    values = data if data is not None else [0.0] * (shape[0] * shape[1] * shape[2] * shape[3])
    return {"inputs": [{"name": "input", "datatype": "FP32", "shape": shape, "data": values}]}


def refused(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert list(r.json()) == ["error"] and r.json()["error"], r.text
    assert "\n" not in r.json()["error"]
    assert r.headers["X-Edgeserve-Error-Code"] == code, r.headers


def binary_request(header: dict, data: bytes, length: int | None = None) -> tuple[bytes, dict]:
    head = orjson.dumps(header)
    given = len(head) if length is None else length
    return head + data, {"Inference-Header-Content-Length": str(given)}


def png_elements(count: int, extra: bytes = b"") -> tuple[bytes, dict]:
    """A binary request of `count` PNGs as one BYTES input (`extra` bytes after them)."""
    png = image_bytes((255, 0, 0))
    element = struct.pack("<I", len(png)) + png
    image = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [count],
        "parameters": {"binary_data_size": count * len(element)},
    }
    return binary_request({"inputs": [image]}, element * count + extra)


def test_the_demo_model_takes_the_shape_these_tests_assume(server):
    with server.client() as client:
        metadata = client.get("/v2/models/edgeserve").json()
    assert metadata["inputs"][0]["shape"] == A_SHAPE, metadata


def test_a_tensor_of_the_wrong_shape_is_invalid_tensor(server):
    with server.client() as client:
        r = client.post(INFER, json=fp32([1, 3, 32, 32]))
    refused(r, 422, "invalid_tensor")
    assert str(A_SHAPE) in r.json()["error"]


def test_a_datatype_the_input_does_not_take_is_invalid_tensor(server):
    body = {"inputs": [{"name": "input", "datatype": "INT64", "shape": [1], "data": [1]}]}
    with server.client() as client:
        refused(client.post(INFER, json=body), 422, "invalid_tensor")


def test_data_that_does_not_fill_the_shape_is_invalid_tensor(server):
    with server.client() as client:
        refused(client.post(INFER, json=fp32(A_SHAPE, [0.5, 0.5])), 422, "invalid_tensor")


def test_an_unknown_model_is_unknown_model(server):
    with server.client() as client:
        for r in (
            client.post("/v2/models/resnet/infer", json=fp32(A_SHAPE)),
            client.get("/v2/models/resnet"),
            client.get("/v2/models/resnet/ready"),
        ):
            refused(r, 404, "unknown_model")


def test_malformed_json_is_invalid_json(server):
    with server.client() as client:
        r = client.post(
            INFER, content=b'{"inputs": [', headers={"Content-Type": "application/json"}
        )
    refused(r, 400, "invalid_json")


def test_binary_data_shorter_than_its_binary_data_size_is_invalid_binary_data(server):
    header = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": A_SHAPE,
                "parameters": {"binary_data_size": 4 * 3 * 64 * 64},
            }
        ]
    }
    body, headers = binary_request(header, b"\0" * 100)
    with server.client() as client:
        refused(client.post(INFER, content=body, headers=headers), 400, "invalid_binary_data")


def test_a_binary_data_size_that_does_not_fit_the_shape_is_invalid_binary_data(server):
    header = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": A_SHAPE,
                "parameters": {"binary_data_size": 100},
            }
        ]
    }
    body, headers = binary_request(header, b"\0" * 100)
    with server.client() as client:
        refused(client.post(INFER, content=body, headers=headers), 400, "invalid_binary_data")


def test_a_header_length_beyond_the_body_is_invalid_binary_data(server):
    body, headers = binary_request(fp32(A_SHAPE), b"", length=10**6)
    with server.client() as client:
        refused(client.post(INFER, content=body, headers=headers), 400, "invalid_binary_data")


def test_bytes_left_after_the_inputs_are_invalid_binary_data(server):
    body, headers = png_elements(1, extra=b"extra")
    with server.client() as client:
        refused(client.post(INFER, content=body, headers=headers), 400, "invalid_binary_data")


def test_bytes_that_are_not_an_image_are_refused_like_v1(server):
    body = {
        "inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["bm90IGFuIGltYWdl"]}
        ]
    }
    with server.client() as client:
        refused(client.post(INFER, json=body), 422, "not_an_image")


def test_an_unknown_v2_path_answers_in_the_protocol_s_shape(server):
    with server.client() as client:
        refused(client.get("/v2/repository/index"), 404, "not_found")


def test_model_names_sent_never_become_metric_labels(server):
    with server.client() as client:
        client.post("/v2/models/made-up-name/infer", json=fp32(A_SHAPE))
        text = client.get("/metrics").text
    assert "made-up-name" not in text
    assert (
        metric_sum(server, "edgeserve_http_requests_total", route="/v2/models/<name:str>/infer")
        >= 1
    )


def test_more_than_one_image_per_request_is_invalid_tensor(server):
    body, headers = png_elements(2)
    with server.client() as client:
        refused(client.post(INFER, content=body, headers=headers), 422, "invalid_tensor")
