"""The Open Inference Protocol, spoken by an unmodified tritonclient against a live server:
health, metadata and infer answer as Triton's would, and equal /v1/infer's answers."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton

from edgeserve.inference.model import Model
from edgeserve.inference.preprocess import decode_image, to_tensor
from tests.support.images import ORANGE, image_b64, image_bytes
from tests.support.metrics import metric_sum
from tests.support.server import REPO, running_server
from tests.support.waiting import wait_until

MODEL = "edgeserve"
PNG = image_bytes(ORANGE)


@pytest.fixture(scope="module")
def server():
    with running_server(SHADOW_ENABLED="true") as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def image_input(binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([PNG], dtype=np.object_), binary_data=binary)
    return tensor


def preprocessed(binary: bool) -> triton.InferInput:
    """The orange image as model A's own input tensor, made the way the server makes it."""
    model = Model.load(REPO / "models" / "vA.onnx")
    batch = to_tensor(decode_image(PNG, 10**6), model.meta, model.meta.input_size)
    tensor = triton.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    return tensor


def v1_predictions(server, top_k: int) -> list[dict]:
    with server.client() as http:
        r = http.post(
            "/v1/infer", content=PNG, headers={"Content-Type": "image/png"}, params={"top_k": top_k}
        )
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def test_health_and_readiness_answer_as_triton_does(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)


def test_model_metadata_names_the_input_tensor_the_image_and_the_scores(client):
    metadata = client.get_model_metadata(MODEL)
    assert metadata["name"] == MODEL
    assert {i["name"]: i["datatype"] for i in metadata["inputs"]} == {
        "input": "FP32",
        "image": "BYTES",
    }
    assert metadata["outputs"][0]["name"] == "scores", metadata


def test_an_fp32_tensor_in_json_scores_as_v1_scores_the_image(server, client):
    result = client.infer(
        MODEL,
        [preprocessed(binary=False)],
        outputs=[triton.InferRequestedOutput("scores", binary_data=False)],
    )
    scores = result.as_numpy("scores")[0]
    best = v1_predictions(server, 1)[0]
    assert int(np.argmax(scores)) == best["index"]
    assert round(float(scores.max()), 6) == best["score"]


def test_an_fp32_tensor_as_binary_data_scores_as_v1_scores_the_image(server, client):
    result = client.infer(MODEL, [preprocessed(binary=True)])
    scores = result.as_numpy("scores")[0]
    assert round(float(scores.max()), 6) == v1_predictions(server, 1)[0]["score"]


def test_a_bytes_image_goes_through_the_model_s_own_pipeline(server, client):
    result = client.infer(MODEL, [image_input()])
    scores = result.as_numpy("scores")[0]
    expected = v1_predictions(server, 1000)
    assert [round(float(scores[p["index"]]), 6) for p in expected] == [p["score"] for p in expected]


def test_the_classification_extension_answers_v1_s_top_k_as_score_index_label(server, client):
    wanted = triton.InferRequestedOutput("scores", class_count=3)
    result = client.infer(MODEL, [image_input()], outputs=[wanted])
    got = [s.decode() for s in result.as_numpy("scores").reshape(-1)]
    expected = [f"{p['score']:f}:{p['index']}:{p['label']}" for p in v1_predictions(server, 3)]
    assert got == expected


def test_the_answer_says_which_variant_and_version_answered(server, client):
    result = client.infer(MODEL, [image_input()]).get_response()
    with server.client() as http:
        a = http.get(
            "/admin/config", headers={"Authorization": f"Bearer {server.env['ADMIN_TOKEN']}"}
        ).json()
    assert result["parameters"]["variant"] == "A", result
    assert result["model_version"] in str(a), (result, a)


def test_an_image_answered_by_a_is_shadowed_on_b(server, client):
    before = metric_sum(server, "edgeserve_shadow_comparisons_total")
    client.infer(MODEL, [image_input()])
    wait_until(
        "one more shadow comparison",
        lambda: metric_sum(server, "edgeserve_shadow_comparisons_total"),
        lambda compared: compared == before + 1,
    )


def test_requests_are_split_between_a_and_b_by_the_weights():
    with running_server(AB_WEIGHT_A="0.5", AB_WEIGHT_B="0.5") as server:
        client = triton.InferenceServerClient(server.url.removeprefix("http://"))
        answered = [
            client.infer(MODEL, [image_input()]).get_response()["parameters"]["variant"]
            for _ in range(24)
        ]
        client.close()
        counted = {
            v: metric_sum(server, "edgeserve_inferences_total", variant=v, outcome="ok")
            for v in "AB"
        }
    assert set(answered) == {"A", "B"}, answered
    assert counted == {v: answered.count(v) for v in "AB"}, counted


def test_a_uint8_tensor_of_pixels_gets_the_model_s_normalisation(server, client):
    pixels = np.asarray(decode_image(PNG, 10**6))  # 64 x 64, model A's own size: no resize
    tensor = triton.InferInput("input", [1, 3, 64, 64], "UINT8")
    tensor.set_data_from_numpy(pixels.transpose(2, 0, 1)[None].copy())
    scores = client.infer(MODEL, [tensor]).as_numpy("scores")[0]
    assert round(float(scores.max()), 6) == v1_predictions(server, 1)[0]["score"]


def test_a_base64_image_in_json_data_answers_as_the_binary_one(server, client):
    body = {
        "inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [1], "data": [image_b64(ORANGE)]}
        ],
        "outputs": [{"name": "scores", "parameters": {"classification": 1}}],
    }
    with server.client() as http:
        r = http.post("/v2/models/edgeserve/infer", json=body)
    assert r.status_code == 200, r.text
    best = v1_predictions(server, 1)[0]
    assert r.json()["outputs"][0]["data"] == [f"{best['score']:f}:{best['index']}:{best['label']}"]
