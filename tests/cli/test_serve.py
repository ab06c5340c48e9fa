"""edgeserve serve: options mirror the settings; a banner names models, versions, weights, URL."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import httpx

from edgeserve.cli.serve import layered_environment
from tests.support.server import REPO, base_env, free_port, start_server, stop_server


def test_the_banner_names_the_url_models_versions_and_weights(server):
    output = server.output()
    assert f"on {server.url}" in output, output[:2000]
    rows = {cells[0]: cells for cells in banner_rows(output)}
    assert rows["A"][2:] == ["a9fc666bece4", "100%"], rows
    assert rows["B"][2:] == ["657ade765658", "0%"], rows
    assert "vA.onnx" in rows["A"][1] and "vB.onnx" in rows["B"][1], rows


def banner_rows(output: str) -> list[list[str]]:
    """The cells of the banner's slot rows (a long path may wrap: its first line holds them)."""
    lines = [line for line in output.splitlines() if line.startswith(("│ A ", "│ B "))]
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines]


def test_options_and_the_env_file_reach_the_server(tmp_path):
    env_file = tmp_path / "edge.env"
    env_file.write_text("# weights for the test\nAB_WEIGHT_A=1\nAB_WEIGHT_B='3'\n")
    port = free_port()
    env = {k: v for k, v in base_env().items() if k not in ("PORT", "AB_WEIGHT_B")}
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command = [sys.executable, "-m", "edgeserve", *args, "--env-file", str(env_file)]
    server = start_server(env, command=command, port=port)
    try:
        headers = {"Authorization": f"Bearer {env['ADMIN_TOKEN']}"}
        config = httpx.get(server.url + "/admin/config", headers=headers).json()
    finally:
        stop_server(server)
    assert config["ab_weight_b"] == 3, config
    assert "75%" in server.output() and f"on http://127.0.0.1:{port}" in server.output()


def test_a_missing_env_file_is_a_one_line_usage_error(run, tmp_path):
    result = run("serve", "--env-file", str(tmp_path / "nope.env"))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: env file {tmp_path / 'nope.env'} does not exist: give an existing file"
    ], result.stderr


def test_a_bad_setting_is_a_one_line_usage_error_naming_the_variable(run):
    result = run("serve", "--workers", "0")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "WORKERS" in lines[0], lines


def test_options_win_over_the_environment_which_wins_over_the_env_file():
    from_file = {"PORT": "1111", "AB_WEIGHT_B": "3", "LOG_FORMAT": "console"}
    environ = {"PORT": "2222", "AB_WEIGHT_B": "1"}
    layered = layered_environment(environ, from_file, {"PORT": 3333, "HOST": None})
    assert layered == {"PORT": "3333", "AB_WEIGHT_B": "1", "LOG_FORMAT": "console"}, layered


def served_models(folder: Path, *options: str) -> dict:
    """The models a server started from `folder` with `options` (and no MODEL_V* variable)
    serves, by slot."""
    port = free_port()
    env = {k: v for k, v in base_env().items() if not k.startswith("MODEL_V")}
    command = [sys.executable, "-m", "edgeserve", "serve", "--port", str(port), *options]
    server = start_server(env, command=command, port=port, cwd=folder)
    try:
        headers = {"Authorization": f"Bearer {env['ADMIN_TOKEN']}"}
        return httpx.get(server.url + "/admin/config", headers=headers).json()["models"]
    finally:
        stop_server(server)


def test_model_a_alone_serves_that_model_with_slot_b_empty(tmp_path):
    shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "mine.onnx")
    models = served_models(tmp_path, "--model-a", str(tmp_path / "mine.onnx"))
    assert set(models) == {"A"} and models["A"]["name"] == "mine", models


def test_model_a_and_model_b_serve_that_pair(tmp_path):
    shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "mine.onnx")
    shutil.copy(REPO / "models" / "vB.onnx", tmp_path / "candidate.onnx")
    models = served_models(
        tmp_path,
        *("--model-a", str(tmp_path / "mine.onnx")),
        *("--model-b", str(tmp_path / "candidate.onnx")),
    )
    assert (models["A"]["name"], models["B"]["name"]) == ("mine", "candidate"), models


def test_the_banner_after_a_restart_shows_the_state_served_not_the_environment(tmp_path):
    env = base_env(STATE_PATH=str(tmp_path / "state.json"), WARMUP_RUNS="0")
    server = start_server(env)
    try:
        with server.admin() as admin:
            assert admin.post("/admin/promote").status_code == 200  # B is empty after it
            old_a_as_b = {"path": "vA.onnx", "allow_label_change": True}  # vB added "orange"
            r = admin.post("/admin/models/B", json=old_a_as_b)
            assert r.status_code == 200, r.text
            weights = {"ab_weight_b": 0.25}  # beside A's 1: 80 % and 20 %
            assert admin.post("/admin/config", json=weights).status_code == 200
    finally:
        stop_server(server)
    restarted = start_server(env)
    try:
        rows = {cells[0]: cells for cells in banner_rows(restarted.output())}
    finally:
        stop_server(restarted)
    assert rows["A"][1:] == ["vB.onnx", "657ade765658", "80%"], rows
    assert rows["B"][2:] == ["a9fc666bece4", "20%"], rows
