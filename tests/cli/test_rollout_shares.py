"""admin rollout shows B's measured share beside its weight, warns when too few sticky clients
make the share follow the clients, and --per-request assigns each request on its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tests.cli.helpers import Traffic, admin_args
from tests.support.server import Server, running_server

STEP = ["--steps", "10", "--min-samples", "8", "--min-latency-delta-ms", "1000"]
"""B at 10 %; B runs in its own process, so latency is not judged here."""


@contextmanager
def four_sticky_clients() -> Iterator[Server]:
    """A server with 4 clients that keep their cookies, sending all the time."""
    with running_server(STICKY_COOKIE="true") as server, ExitStack() as stack:
        for _ in range(4):
            stack.enter_context(Traffic(server.url, sticky=True))
        yield server


def measured_share(stdout: str) -> float:
    found = re.search(r"B at 10% \(measured ([0-9.]+)% of (\d+) requests\)", stdout)
    assert found and int(found[2]) > 0, stdout
    return float(found[1])


def test_with_4_sticky_clients_at_weight_10_percent_the_rollout_warns(run):
    with four_sticky_clients() as server:
        args = [*STEP, "--interval", "3", "--max-wait", "2"]
        result = run("admin", "rollout", *args, *admin_args(server.url))
    text = " ".join(result.stderr.split())
    assert "only 4 distinct clients in this step (fewer than 20)" in text, result.output
    measured_share(result.stdout)


def test_per_request_gives_b_its_weight_within_3_points_and_puts_sticky_back(run):
    with four_sticky_clients() as server:
        args = [*STEP, "--interval", "8", "--max-wait", "8", "--per-request"]
        result = run("admin", "rollout", *args, *admin_args(server.url))
        with server.admin() as admin:
            sticky = admin.get("/admin/config").json()["sticky_cookie"]
    assert result.exit_code == 0, result.output
    assert 7 <= measured_share(result.stdout) <= 13, result.stdout
    assert "--per-request: each request is assigned" in result.stderr, result.stderr
    assert "distinct clients" not in result.stderr, result.stderr
    assert sticky is True


def test_shift_with_steps_shows_b_measured_share_and_warns_of_4_sticky_clients(run):
    with four_sticky_clients() as server:
        args = ["20", "--step", "10", "--interval", "3", *admin_args(server.url)]
        result = run("admin", "shift", *args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert re.search(r"B at 10%: measured [0-9.]+% of [1-9]\d* requests in 3s", text), text
    assert "only 4 distinct clients in this step" in text, text
