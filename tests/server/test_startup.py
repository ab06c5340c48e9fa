"""Start-up: what wins when settings disagree, and a model A that cannot load."""

from __future__ import annotations

import subprocess
import sys

from tests.support.server import REPO, base_env, free_port, running_server


def test_a_saved_state_wins_over_the_environment(tmp_path):
    state_path = tmp_path / "state.json"
    with running_server(STATE_PATH=str(state_path)) as server, server.admin() as admin:
        changed = {"ab_weight_a": 0.25, "ab_weight_b": 0.75, "shadow_enabled": True}
        assert admin.post("/admin/config", json=changed).status_code == 200
    restarted = {"AB_WEIGHT_A": "1", "AB_WEIGHT_B": "0", "SHADOW_ENABLED": "false"}
    with running_server(STATE_PATH=str(state_path), **restarted) as server, server.admin() as admin:
        config = admin.get("/admin/config").json()
    assert (config["ab_weight_a"], config["ab_weight_b"], config["shadow_enabled"]) == (
        0.25,
        0.75,
        True,
    ), config


def test_a_model_a_that_cannot_load_stops_the_server_and_says_why(tmp_path):
    junk = tmp_path / "vA.onnx"
    junk.write_bytes(b"not an onnx model")
    env = base_env(MODEL_VA_PATH=str(junk), MODEL_VB_PATH="", PORT=str(free_port()))
    finished = subprocess.run(
        [sys.executable, "-m", "edgeserve", "serve"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,  # it must stop by itself, not serve without a model
    )
    output = finished.stdout + finished.stderr
    failed = [line for line in output.splitlines() if '"event": "models_failed_to_load"' in line]
    assert len(failed) == 1, output[-3000:]
    assert '"level": "critical"' in failed[0], failed  # the copy it loads keeps the name vA.onnx
    assert "vA.onnx is not a loadable ONNX model" in failed[0], failed
    assert finished.returncode == 1, "a supervisor must see a failed start, not a clean exit"
