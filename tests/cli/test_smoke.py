"""edgeserve smoke: a pass/fail row per check; exit 0 only when all pass."""

from __future__ import annotations

import json

import httpx

from edgeserve.cli.smoke import run_checks
from edgeserve.client import EdgeserveClient
from tests.support.server import ADMIN_TOKEN, base_env, start_server, stop_server


def rows(stdout: str) -> dict[str, str]:
    """check name -> PASS/FAIL/SKIP from the rendered table."""
    found = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) >= 2 and cells[1] in ("PASS", "FAIL", "SKIP"):
            found[cells[0]] = cells[1]
    return found


def test_smoke_passes_every_check_against_a_healthy_server(run, server):
    result = run("smoke", "--url", server.url, "--token", ADMIN_TOKEN)
    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == {
        "health": "PASS",
        "ready": "PASS",
        "inference": "PASS",
        "trace id": "PASS",
        "metrics": "PASS",
        "admin config": "PASS",
    }, result.stdout


def test_smoke_without_a_token_skips_the_admin_check_and_passes(run, server):
    result = run("smoke", "--url", server.url)
    assert result.exit_code == 0, result.output
    assert rows(result.stdout)["admin config"] == "SKIP", result.stdout


def test_smoke_with_a_wrong_token_fails_the_admin_check_and_exits_1(run, server):
    result = run("smoke", "--url", server.url, "--token", "wrong-token-wrong-token")
    assert result.exit_code == 1, result.output
    assert rows(result.stdout)["admin config"] == "FAIL", result.stdout
    assert "smoke test of" in result.stderr and "admin config" in result.stderr, result.stderr
    assert "wrong-token-wrong-token" not in result.output


def test_smoke_against_an_admin_disabled_server_fails_the_admin_check(run, no_admin_server):
    result = run("smoke", "--url", no_admin_server.url, "--token", ADMIN_TOKEN, "--json")
    assert result.exit_code == 1, result.output
    record = json.loads(result.stdout)
    failed = {c["name"]: c["detail"] for c in record["checks"] if c["result"] == "fail"}
    assert list(failed) == ["admin config"] and "disabled" in failed["admin config"], record


def test_smoke_json_lists_each_check(run, server):
    result = run("smoke", "--url", server.url, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["passed"] is True and record["url"] == server.url, record
    assert [c["name"] for c in record["checks"]][:5] == [
        "health",
        "ready",
        "inference",
        "trace id",
        "metrics",
    ], record


def test_smoke_against_nothing_is_one_line_naming_the_url(run, down_url):
    result = run("smoke", "--url", down_url)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f'error: cannot reach {down_url} (connection refused): is "edgeserve serve" running?'
    ], result.stderr


def fake_server(*, ready: int = 200, trace_echo: bool = True) -> EdgeserveClient:
    """A server that answers like edgeserve, except where told not to."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/healthz":
            return httpx.Response(200, json={"ok": True})
        if path == "/ready":
            return httpx.Response(ready, json={"ready": ready == 200})
        if path == "/metrics":
            return httpx.Response(200, text='edgeserve_inferences_total{variant="A"} 1.0\n')
        trace = request.headers.get("X-Request-ID") if trace_echo else "made-up"
        body = {
            "variant": "A",
            "model": {"name": "vA", "version": "x"},
            "predictions": [{"index": 0, "label": "red", "score": 1.0}],
            "trace_id": trace or "t",
        }
        return httpx.Response(
            200, json=body, headers={"Trace-Id": trace or "t", "X-Edgeserve-Variant": "A"}
        )

    return EdgeserveClient("http://fake.test", transport=httpx.MockTransport(handler))


def test_a_server_that_is_not_ready_fails_the_ready_check():
    results = {c.name: c for c in run_checks(fake_server(ready=503), with_admin=False)}
    assert results["ready"].result == "fail", results
    assert results["health"].result == "pass" and results["inference"].result == "pass"


def test_a_server_that_ignores_x_request_id_fails_the_trace_id_check():
    results = {c.name: c for c in run_checks(fake_server(trace_echo=False), with_admin=False)}
    assert results["trace id"].result == "fail", results
    assert "got Trace-Id made-up" in results["trace id"].detail, results


def test_smoke_wait_lets_a_just_started_server_become_ready(run):
    server = start_server(base_env(), wait_ready=False)
    try:
        result = run("smoke", "--url", server.url, "--wait", "60")
    finally:
        stop_server(server)
    assert result.exit_code == 0, result.output
    assert rows(result.stdout)["ready"] == "PASS", result.stdout


def test_smoke_wait_gives_up_in_one_line_when_nothing_comes_up(run, down_url):
    result = run("smoke", "--url", down_url, "--wait", "0.5")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not ready after waiting 0.5 s" in lines[0], lines
    assert "connection refused" in lines[0], lines
