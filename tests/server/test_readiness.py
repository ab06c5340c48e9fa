"""/ready turns 200 only once every configured variant is loaded and warmed."""

from __future__ import annotations

import json
import shutil

import httpx

from tests.support.images import image_b64
from tests.support.server import REPO, base_env, start_server, stop_server
from tests.support.waiting import wait_until


def test_ready_is_503_while_models_warm_and_200_after(tmp_path):
    # Many warm-up runs at a large default size keep the model warming for a second or two.
    shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "slow.onnx")
    (tmp_path / "slow.json").write_text(json.dumps({"img_size": 1024}))
    env = base_env(WARMUP_RUNS="300", MODEL_VA_PATH=str(tmp_path / "slow.onnx"), MODEL_VB_PATH="")
    server = start_server(env, wait_ready=False)
    seen: list[tuple[int, dict]] = []
    refused: list[httpx.Response] = []

    def ready_status() -> int | str:
        """/ready's answer, trying an inference while it is not 200."""
        try:
            r = httpx.get(server.url + "/ready", timeout=1)
        except httpx.TransportError as error:
            return type(error).__name__
        seen.append((r.status_code, r.json()))
        if r.status_code != 200:
            infer = httpx.post(
                server.url + "/v1/infer", json={"image_b64": image_b64((255, 0, 0))}, timeout=5
            )
            if infer.status_code == 503:  # else the models became ready in between
                refused.append(infer)
        return r.status_code

    try:
        wait_until(
            "/ready to answer 200", ready_status, lambda s: s == 200, timeout=60, interval=0.02
        )
    finally:
        stop_server(server)
    assert seen[0] == (503, {"ready": False, "models_loaded": False}), seen[:3]
    assert seen[-1] == (200, {"ready": True, "models_loaded": True}), seen[-3:]
    assert refused, "no inference was refused while the models warmed"
    for infer in refused:
        assert infer.json()["error"]["code"] == "not_ready", infer.text
