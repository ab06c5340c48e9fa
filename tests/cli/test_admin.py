"""edgeserve admin against a real server: config get/set, warmup, promote, load, and failures."""

from __future__ import annotations

import json

from edgeserve.inference.model import file_version
from tests.cli.helpers import admin_args
from tests.support.server import ADMIN_TOKEN, running_server


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    return lines[0]


def test_config_get_prints_a_table_of_the_settings(run, server):
    result = run("admin", "config", "get", *admin_args(server.url))
    assert result.exit_code == 0, result.output
    for expected in ("weight A", "100% of traffic", "vA", "vB", "generation", "sticky cookie"):
        assert expected in result.stdout, (expected, result.stdout)


def test_config_get_json_gives_each_instance_result(run, server):
    result = run("admin", "config", "get", *admin_args(server.url), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    (instance,) = record["instances"]
    assert instance["url"] == server.url and instance["ok"] is True, record
    assert instance["result"]["models"]["A"]["name"] == "vA", record


def test_url_and_token_come_from_the_environment(run, server):
    env = {"EDGESERVE_URL": server.url, "ADMIN_TOKEN": ADMIN_TOKEN}
    result = run("admin", "config", "get", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["instances"][0]["url"] == server.url, result.stdout


def test_config_set_changes_only_the_given_fields(run, mutable):
    args = ["--weight-a", "3", "--weight-b", "1", "--shadow", "--no-sticky"]
    result = run("admin", "config", "set", *args, *admin_args(mutable.url), "--json")
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["instances"][0]["result"]
    assert (config["ab_weight_a"], config["ab_weight_b"]) == (3, 1), config
    assert config["shadow_enabled"] is True and config["sticky_cookie"] is False, config
    assert config["canary_enabled"] is False, config


def test_config_set_prints_a_row_with_the_new_traffic_split(run, mutable):
    result = run("admin", "config", "set", "--weight-b", "1", *admin_args(mutable.url))
    assert result.exit_code == 0, result.output
    assert mutable.url in result.stdout and "50% / 50%" in result.stdout, result.stdout


def test_config_set_without_a_field_is_a_usage_error(run, server):
    result = run("admin", "config", "set", *admin_args(server.url))
    assert result.exit_code == 2, result.output
    assert "nothing to set" in one_line(result)


def test_a_negative_weight_is_a_one_line_usage_error(run, server):
    result = run("admin", "config", "set", "--weight-b", "-1", *admin_args(server.url))
    assert result.exit_code == 2, result.output
    assert "--weight-b" in one_line(result)


def test_a_value_the_server_refuses_shows_the_server_message(run, server):
    args = ["--weight-a", "0", "--weight-b", "0"]
    result = run("admin", "config", "set", *args, *admin_args(server.url))
    assert result.exit_code == 1, result.output
    line = one_line(result)
    assert "422" in line and "ab_weight_a and ab_weight_b cannot both be 0" in line, line


def test_a_wrong_token_is_one_line_401_that_never_shows_the_token(run, server):
    secret = "wrong-secret-token-1111"
    result = run("admin", "config", "get", *admin_args(server.url, secret))
    assert result.exit_code == 1, result.output
    assert "401" in one_line(result) and "--token" in one_line(result)
    assert secret not in result.output, result.output


def test_a_missing_token_says_how_to_give_one(run, server):
    result = run("admin", "warmup", *admin_args(server.url, None))
    assert result.exit_code == 1, result.output
    assert one_line(result) == (
        f"error: {server.url} needs the admin token (401 unauthorized): "
        "pass --token or set ADMIN_TOKEN"
    )


def test_a_server_without_admin_token_says_the_admin_api_is_disabled(run, no_admin_server):
    result = run("admin", "config", "get", *admin_args(no_admin_server.url))
    assert result.exit_code == 1, result.output
    line = one_line(result)
    assert "admin API is disabled" in line and "403" in line and "ADMIN_TOKEN" in line, line


def test_an_unreachable_server_is_one_line_naming_the_url(run, down_url):
    result = run("admin", "config", "get", *admin_args(down_url))
    assert result.exit_code == 1, result.output
    assert one_line(result) == (
        f'error: cannot reach {down_url} (connection refused): is "edgeserve serve" running?'
    )


def test_a_malformed_url_is_a_usage_error(run):
    result = run("admin", "config", "get", "--url", "ftp://example")
    assert result.exit_code == 2, result.output
    assert "is not a server URL" in one_line(result)


def test_help_never_shows_the_token_from_the_environment(run):
    secret = "env-secret-token-2222"
    result = run("admin", "config", "set", "--help", env={"ADMIN_TOKEN": secret})
    assert result.exit_code == 0, result.output
    assert "ADMIN_TOKEN" in result.stdout and secret not in result.output, result.output


def test_warmup_prints_runs_and_time_per_variant(run, server):
    result = run("admin", "warmup", *admin_args(server.url))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("runs,") == 2, result.stdout


def test_promote_without_yes_asks_and_does_nothing_on_no(run, server):
    result = run("admin", "promote", *admin_args(server.url), input="n\n")
    assert result.exit_code == 1, result.output
    assert "Promote model B to slot A" in result.stderr, result.stderr
    assert "not promoted" in result.stderr, result.stderr
    with server.admin() as admin:
        assert admin.get("/admin/config").json()["models"]["A"]["name"] == "vA"


def test_promote_without_yes_and_without_a_terminal_does_nothing(run, server):
    result = run("admin", "promote", *admin_args(server.url))
    assert result.exit_code == 1, result.output
    assert "not promoted: answer y to the question, or pass --yes" in result.stderr


def test_promote_yes_makes_b_the_new_a_with_all_traffic(run, mutable):
    with mutable.admin() as admin:
        admin.post("/admin/config", json={"ab_weight_b": 1.0})
    result = run("admin", "promote", "--yes", *admin_args(mutable.url), "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)["instances"][0]["result"]
    assert answer["previous_a"]["name"] == "vA" and answer["new_a"]["name"] == "vB", answer
    with mutable.admin() as admin:
        config = admin.get("/admin/config").json()
    assert config["models"]["A"]["name"] == "vB", config
    assert (config["ab_weight_a"], config["ab_weight_b"]) == (1.0, 0.0), config


def test_promote_confirmed_interactively_prints_the_swap(run, mutable):
    result = run("admin", "promote", *admin_args(mutable.url), input="y\n")
    assert result.exit_code == 0, result.output
    assert "vA a9fc666bece4" in result.stdout and "vB 657ade765658" in result.stdout, result.stdout


def test_load_hot_loads_a_model_into_a_slot(run, mutable, model_dir):
    result = run("admin", "load", "b", "vC.onnx", *admin_args(mutable.url))
    assert result.exit_code == 0, result.output
    assert f"vC {file_version(model_dir / 'vC.onnx')}" in result.stdout, result.stdout
    with mutable.admin() as admin:
        assert admin.get("/admin/config").json()["models"]["B"]["name"] == "vC"


def test_load_of_a_missing_model_shows_the_server_reason_and_keeps_the_old(run, mutable):
    result = run("admin", "load", "A", "nope.onnx", *admin_args(mutable.url))
    assert result.exit_code == 1, result.output
    assert "422" in one_line(result) and "nope.onnx does not exist" in one_line(result)
    with mutable.admin() as admin:
        assert admin.get("/admin/config").json()["models"]["A"]["name"] == "vA"


def test_load_into_an_unknown_slot_is_a_usage_error(run, server):
    result = run("admin", "load", "C", "vB.onnx", *admin_args(server.url))
    assert result.exit_code == 2, result.output
    assert "'C' is not a slot: use A or B" in one_line(result)


def test_rollback_after_a_promote_prints_the_replaced_and_the_restored_a(run):
    with running_server(WARMUP_RUNS="0") as server:
        assert run("admin", "promote", "--yes", *admin_args(server.url)).exit_code == 0
        result = run("admin", "rollback", *admin_args(server.url))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "vB 657ade765658" in line]
    assert rows and "vA a9fc666bece4" in rows[0], result.stdout
