"""A server that cannot load model A exits non-zero, so a supervisor sees a failure."""

from __future__ import annotations

from tests.support.server import base_env, start_server, stop_server


def test_a_server_whose_model_a_cannot_load_exits_non_zero(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    server = start_server(base_env(MODEL_VA_PATH=str(broken)), wait_ready=False)
    try:
        code = server.process.wait(60)
    finally:
        stop_server(server)
    assert code != 0, server.output()[-2000:]
    assert "models_failed_to_load" in server.output()
