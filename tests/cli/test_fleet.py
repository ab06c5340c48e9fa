"""Admin commands on a fleet: the call on every instance, a row each, read-back and drift."""

from __future__ import annotations

import json

import pytest

from edgeserve.cli import fleet
from edgeserve.cli.fleet import Outcome, describe_drift, drift, settle
from edgeserve.client import ClientError
from tests.cli.helpers import admin_args
from tests.support.server import ADMIN_TOKEN


def config(generation: int, a: str = "a9fc666bece4", b: str = "657ade765658") -> dict:
    return {
        "generation": generation,
        "models": {"A": {"name": "vA", "version": a}, "B": {"name": "vB", "version": b}},
    }


def test_drift_names_each_field_on_which_reachable_instances_differ():
    readback = [
        Outcome("http://a", data=config(3)),
        Outcome("http://b", data=config(4, b="000000000000")),
        Outcome("http://c", error=ClientError("cannot reach http://c")),
    ]
    differing = drift(readback)
    assert set(differing) == {"generation", "B"}, differing
    assert describe_drift(differing) == (
        "generation differs (http://a=3, http://b=4); "
        "model B differs (http://a=vB 657ade765658, http://b=vB 000000000000)"
    )


def test_no_drift_when_instances_agree():
    assert drift([Outcome("http://a", data=config(2)), Outcome("http://b", data=config(2))]) == {}


def readbacks(store: str, *generations: tuple[int, int]) -> list[list[Outcome]]:
    """Successive read-backs of two instances, each answering `store` as its state store."""
    return [
        [
            Outcome("http://a", data={**config(a), "state_store": store}),
            Outcome("http://b", data={**config(b), "state_store": store}),
        ]
        for a, b in generations
    ]


def test_instances_on_a_shared_store_get_time_to_converge_before_drift_is_reported(monkeypatch):
    first, *later = readbacks("redis", (4, 3), (4, 3), (4, 4))
    monkeypatch.setattr(fleet, "run_on_each", lambda urls, token, call: later.pop(0))
    assert drift(settle(["http://a", "http://b"], None, first)) == {}
    assert later == []


def test_instances_with_a_state_each_are_not_waited_for(monkeypatch):
    first, *later = readbacks("file", (4, 3), (4, 4))
    monkeypatch.setattr(fleet, "run_on_each", lambda urls, token, call: later.pop(0))
    assert set(drift(settle(["http://a", "http://b"], None, first))) == {"generation"}
    assert len(later) == 1


def test_a_fleet_call_applies_to_each_instance_and_fails_if_one_is_down(run, mutable, down_url):
    urls = [mutable.url, down_url]
    result = run("admin", "config", "set", "--shadow", *admin_args(urls))
    assert result.exit_code == 1, result.output
    rows = [line for line in result.stdout.splitlines() if "http://" in line]
    assert any(mutable.url in r and "ok" in r for r in rows), result.stdout
    assert any(down_url in r and "unreachable" in r for r in rows), result.stdout
    assert f"cannot reach {down_url} (connection refused)" in result.stderr, result.stderr
    assert f"1 of 2 instances failed: {down_url}" in result.stderr, result.stderr
    with mutable.admin() as admin:
        assert admin.get("/admin/config").json()["shadow_enabled"] is True


def test_a_fleet_reads_back_and_says_no_drift_when_instances_agree(run, server, twin):
    result = run("admin", "warmup", *admin_args([server.url, twin.url]))
    assert result.exit_code == 0, result.output
    assert "read back" in result.stdout, result.stdout
    assert "no drift: 2 instances serve generation 1" in result.stdout, result.stdout


def test_a_fleet_says_clearly_when_model_versions_differ(run, server, mutable):
    with mutable.admin() as admin:
        assert admin.post("/admin/models/B", json={"path": "vA.onnx"}).status_code == 200
    result = run("admin", "config", "get", *admin_args([server.url, mutable.url]))
    assert result.exit_code == 0, result.output
    assert "DRIFT:" in result.stdout and "[bold" not in result.stdout, result.stdout
    assert "model B differs" in result.stdout and "generation differs" in result.stdout


def test_fleet_json_has_a_result_per_instance_the_read_back_and_the_drift(run, server, mutable):
    with mutable.admin() as admin:
        assert admin.post("/admin/models/B", json={"path": "vA.onnx"}).status_code == 200
    result = run("admin", "warmup", *admin_args([server.url, mutable.url]), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert [i["url"] for i in record["instances"]] == [server.url, mutable.url], record
    assert all(i["ok"] for i in record["instances"]), record
    assert {r["url"]: r["B"] for r in record["readback"]} == {
        server.url: "vB 657ade765658",
        mutable.url: "vA a9fc666bece4",
    }, record
    assert set(record["drift"]) >= {"B"}, record


FLEET_COMMANDS = [
    ["config", "get"],
    ["config", "set", "--shadow"],
    ["warmup"],
    ["promote", "--yes"],
    ["load", "B", "vC.onnx"],
    ["shift", "10"],
]


@pytest.mark.parametrize("command", FLEET_COMMANDS, ids=" ".join)
def test_every_admin_command_runs_on_each_instance_of_a_fleet(run, mutable, down_url, command):
    result = run("admin", *command, *admin_args([mutable.url, down_url]), "--json")
    assert result.exit_code == 1, result.output  # one instance is down
    instances = json.loads(result.stdout)["instances"]
    assert [(i["url"], i["ok"]) for i in instances] == [(mutable.url, True), (down_url, False)]


def test_the_same_url_twice_is_a_usage_error(run, server):
    result = run("admin", "warmup", *admin_args([server.url, server.url + "/"]))
    assert result.exit_code == 2, result.output
    assert "is given more than once" in result.stderr, result.stderr


def test_a_fleet_from_the_environment_is_space_separated(run, server, twin):
    env = {"EDGESERVE_URL": f"{server.url} {twin.url}", "ADMIN_TOKEN": ADMIN_TOKEN}
    result = run("admin", "config", "get", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert [i["url"] for i in json.loads(result.stdout)["instances"]] == [server.url, twin.url]
