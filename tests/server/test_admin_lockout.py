"""Wrong admin tokens back off per client address: 429 with Retry-After, doubling, bounded."""

from __future__ import annotations

import pytest

from edgeserve.server.lockout import MAX_WAIT_SECONDS, FailedLogins
from tests.support.metrics import metric_sum
from tests.support.server import ADMIN_TOKEN, running_server

GUESSER, OPERATOR = "203.0.113.7", "198.51.100.9"
RIGHT = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer not-the-admin-token-0123"}


def from_address(address: str, headers: dict[str, str]) -> dict[str, str]:
    """Headers a trusted proxy would add for a client at `address`."""
    return {**headers, "X-Forwarded-For": address}


@pytest.fixture(scope="module")
def proxied_server():
    # Behind a trusted proxy, as the rate limiter sees it: X-Forwarded-For names the client.
    # A first wait of 60 s, so the whole flood below lands inside it on any machine.
    with running_server(TRUSTED_PROXIES="127.0.0.1", ADMIN_LOCKOUT_SECONDS="60") as server:
        yield server


def test_a_thousand_wrong_tokens_from_one_address_get_429_after_the_tenth(proxied_server):
    with proxied_server.client() as client:
        answers = [
            client.get("/admin/config", headers=from_address(GUESSER, WRONG)) for _ in range(1000)
        ]
        statuses = [r.status_code for r in answers]
        assert statuses[:10] == [401] * 10, statuses[:12]
        assert statuses[10:] == [429] * 990, sorted(set(statuses[10:]))
        locked = answers[10]
        assert locked.json()["error"]["code"] == "admin_locked_out", locked.text
        assert 1 <= int(locked.headers["Retry-After"]) <= 60, locked.headers
        assert all(r.headers.get("Retry-After", "").isdigit() for r in answers[10:])
        # The right token from the locked address is refused too: no oracle for a guess.
        same = client.get("/admin/config", headers=from_address(GUESSER, RIGHT))
        assert same.status_code == 429, same.text
        # Another address is not affected.
        other = client.get("/admin/config", headers=from_address(OPERATOR, RIGHT))
        assert other.status_code == 200, other.text
    assert metric_sum(proxied_server, "edgeserve_admin_auth_failures_total") == 10
    assert metric_sum(proxied_server, "edgeserve_admin_lockouts_total") == 1
    assert '"admin_locked_out"' in proxied_server.output()


def test_a_right_token_forgets_the_failures_before_it(proxied_server):
    address = "192.0.2.44"
    with proxied_server.client() as client:
        statuses = []
        for _ in range(3):
            for _ in range(9):
                wrong = client.get("/admin/config", headers=from_address(address, WRONG))
                statuses.append(wrong.status_code)
            right = client.get("/admin/config", headers=from_address(address, RIGHT))
            statuses.append(right.status_code)
    assert statuses == ([401] * 9 + [200]) * 3, statuses


def test_the_wait_starts_after_the_free_failures_and_doubles_up_to_the_cap():
    logins = FailedLogins(free_failures=10, first_wait=1.0)
    assert [logins.failed("x", now=0.0) for _ in range(9)] == [0.0] * 9
    assert logins.wait("x", now=0.0) == 0
    assert logins.failed("x", now=0.0) == 1.0  # the tenth
    assert logins.wait("x", now=0.25) == 0.75
    assert logins.wait("x", now=1.0) == 0
    waits = [logins.failed("x", now=float(n)) for n in range(1, 12)]
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 900.0, 900.0], waits
    assert MAX_WAIT_SECONDS == 900.0


def test_a_long_run_of_failures_stays_at_the_cap():
    logins = FailedLogins(free_failures=1, first_wait=1.0)
    for n in range(5000):
        wait = logins.failed("x", now=float(n))
    assert wait == MAX_WAIT_SECONDS


def test_success_forgets_an_address_and_others_are_untouched():
    logins = FailedLogins(free_failures=2, first_wait=5.0)
    for client in ("a", "a", "b", "b"):
        logins.failed(client, now=0.0)
    logins.succeeded("a")
    assert (logins.wait("a", now=1.0), logins.wait("b", now=1.0)) == (0.0, 4.0)
    assert logins.failed("a", now=1.0) == 0.0  # its free failures are back


def test_the_table_of_addresses_is_bounded_and_forgets_the_least_recent():
    logins = FailedLogins(free_failures=1, first_wait=5.0, max_clients=100)
    for n in range(10_000):
        logins.failed(f"10.0.{n // 256}.{n % 256}", now=0.0)
    assert len(logins.clients) == 100
    assert logins.wait("10.0.0.0", now=1.0) == 0.0  # forgotten
    assert logins.wait("10.0.39.15", now=1.0) == 4.0  # the last one seen
