"""Logs are one JSON object a line, one access line per request (docs/operations.md 4).

One server answers a 200 inference, a 400, a 404, an authorised and an unauthorised admin
call; each test reads what it printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.images import image_b64
from tests.support.server import ADMIN_TOKEN, Server, running_server
from tests.support.waiting import wait_until

ACCESS_FIELDS = (
    "timestamp",
    "level",
    "event",
    "trace_id",
    "route",
    "status",
    "variant",
    "duration_ms",
)
CLIENT_REQUEST_ID = "logs-test.request:1"


@dataclass
class Exchange:
    """One request the test made, the answer, and the route the access line should name."""

    name: str
    route: str
    response: httpx.Response


@dataclass
class Logged:
    server: Server
    exchanges: list[Exchange]
    output: str
    access_lines: list[dict[str, Any]]  # those written for the exchanges, in order


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def access_lines(output: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(output) if line.get("event") == "request"]


def make_requests(server: Server) -> list[Exchange]:
    red = {"image_b64": image_b64((255, 0, 0))}
    with server.client() as client, server.admin() as admin:
        return [
            Exchange("inference", "/v1/infer", client.post("/v1/infer", json=red)),
            Exchange(
                "inference with X-Request-ID",
                "/v1/infer",
                client.post("/v1/infer", json=red, headers={"X-Request-ID": CLIENT_REQUEST_ID}),
            ),
            Exchange(
                "bad base64", "/v1/infer", client.post("/v1/infer", json={"image_b64": "%%%"})
            ),
            Exchange("unknown route", "unmatched", client.get("/no-such-route")),
            Exchange("admin", "/admin/config", admin.get("/admin/config")),
            Exchange(
                "admin, wrong scheme",
                "/admin/config",
                client.get("/admin/config", headers={"Authorization": f"Basic {ADMIN_TOKEN}"}),
            ),
        ]


@pytest.fixture(scope="module")
def logged() -> Iterator[Logged]:
    with running_server() as server:
        before = len(access_lines(server.output()))  # the /ready polls of start-up
        exchanges = make_requests(server)
        statuses = [e.response.status_code for e in exchanges]
        assert statuses == [200, 200, 400, 404, 200, 401], statuses
        wait_until(
            f"{before + len(exchanges)} access lines ({before} from start-up)",
            lambda: len(access_lines(server.output())),
            lambda lines: lines >= before + len(exchanges),
            context=lambda: server.output()[-4000:],
        )
        output = server.output()
        yield Logged(server, exchanges, output, access_lines(output)[before:])


def line_for(logged: Logged, exchange: Exchange) -> dict[str, Any]:
    trace_id = exchange.response.headers["Trace-Id"]
    matches = [line for line in logged.access_lines if line["trace_id"] == trace_id]
    assert len(matches) == 1, f"{exchange.name}: {len(matches)} access lines for {trace_id}"
    return matches[0]


def test_every_line_starting_with_a_brace_is_one_json_object(logged):
    for line in logged.output.splitlines():
        if line.startswith("{"):
            assert isinstance(json.loads(line), dict), line


def test_each_request_writes_exactly_one_access_line(logged):
    assert len(logged.access_lines) == len(logged.exchanges), logged.access_lines


def test_access_lines_carry_the_contract_fields(logged):
    for line in logged.access_lines:
        missing = [field for field in ACCESS_FIELDS if field not in line]
        assert not missing, f"missing {missing}: {line}"
        assert line["level"] == "info", line
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() == timedelta(0), line
        assert isinstance(line["status"], int), line
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0, line


def test_logged_trace_id_is_the_trace_id_of_the_response(logged):
    logged_ids = sorted(line["trace_id"] for line in logged.access_lines)
    answered_ids = sorted(e.response.headers["Trace-Id"] for e in logged.exchanges)
    assert logged_ids == answered_ids
    for exchange in logged.exchanges:
        body = exchange.response.json()  # answers and error envelopes; admin views have none
        if "trace_id" in body:
            assert body["trace_id"] == exchange.response.headers["Trace-Id"], exchange.name


def test_a_valid_client_request_id_is_the_logged_trace_id(logged):
    [exchange] = [e for e in logged.exchanges if e.name == "inference with X-Request-ID"]
    assert line_for(logged, exchange)["trace_id"] == CLIENT_REQUEST_ID


def test_access_line_names_the_status_and_route_of_the_response(logged):
    for exchange in logged.exchanges:
        line = line_for(logged, exchange)
        assert (line["status"], line["route"]) == (
            exchange.response.status_code,
            exchange.route,
        ), f"{exchange.name}: {line}"


def test_access_line_names_the_variant_that_answered(logged):
    for exchange in logged.exchanges:
        if exchange.response.status_code == 200 and exchange.route == "/v1/infer":
            variant = exchange.response.headers["X-Edgeserve-Variant"]
            assert line_for(logged, exchange)["variant"] == variant, exchange.name


def test_access_line_has_no_variant_where_none_is_chosen(logged):
    for exchange in logged.exchanges:
        if exchange.route != "/v1/infer":
            assert line_for(logged, exchange)["variant"] is None, exchange.name


def test_error_lines_carry_the_error_code_of_the_envelope(logged):
    for exchange in logged.exchanges:
        line = line_for(logged, exchange)
        if exchange.response.status_code >= 400:
            code = exchange.response.json()["error"]["code"]
            assert line.get("error_code") == code, f"{exchange.name}: {line}"
        else:
            assert line.get("error_code") is None, f"{exchange.name}: {line}"


def test_admin_token_never_appears_in_the_output(logged):
    assert ADMIN_TOKEN not in logged.output


def test_console_format_writes_readable_lines_instead_of_json():
    with running_server(LOG_FORMAT="console") as server, server.client() as client:
        assert client.get("/health").status_code == 200
        wait_until(
            "an access line for /health",
            lambda: "route=/health" in server.output(),
            context=lambda: server.output()[-2000:],
        )
        output = server.output()
    access = [line for line in output.splitlines() if "route=/health" in line]
    assert len(access) == 1, output[-2000:]
    assert "request" in access[0] and "status=200" in access[0], access
    assert not any(line.startswith("{") for line in output.splitlines()), output[-2000:]
