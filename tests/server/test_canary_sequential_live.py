"""The sequential guard on a real server: a B that fails like A keeps serving however long it is
watched, and a B that fails four times as often is rolled back.

Both models fail deterministically on bright images (tests.support.models), so the share of
failures is the share of bright images the clients send, shuffled with a fixed seed."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest

from tests.support.images import image_bytes
from tests.support.metrics import metric_sum
from tests.support.models import save_fails_from_brightness
from tests.support.server import running_server

THREADS = 4
DARK, GREY, BRIGHT = 50, 150, 250
"""Grey values: each fails a model from brightness 100 on, bright one from 200 on as well."""


def flaky_models(tmp_path, a_from: int, b_from: int) -> dict[str, str]:
    save_fails_from_brightness(tmp_path / "a.onnx", a_from)
    save_fails_from_brightness(tmp_path / "b.onnx", b_from)
    return {
        "MODEL_VA_PATH": str(tmp_path / "a.onnx"),
        "MODEL_VB_PATH": str(tmp_path / "b.onnx"),
        "MODEL_DIR": str(tmp_path),
        "CANARY_ENABLED": "true",
        "AB_WEIGHT_B": "1",
        "STICKY_COOKIE": "false",  # a random arm per request: 50/50
        "LOG_LEVEL": "warning",
    }


def shuffled(count: int, shares: dict[int, float], seed: int) -> list[int]:
    """`count` grey values, each at its exact share (the rest DARK), in a seeded order."""
    values = [value for value, share in shares.items() for _ in range(round(count * share))]
    values += [DARK] * (count - len(values))
    random.Random(seed).shuffle(values)
    return values


def send(server, values: list[int], stop_on_rollback: bool) -> dict[int, int]:
    """Post each value's image (binary upload) from THREADS clients; the statuses counted."""
    bodies = {value: image_bytes((value,) * 3, size=32) for value in set(values)}

    def client_work(index: int) -> list[int]:
        # http.client, not httpx: a fifth of the client's CPU per request, and 20,000 of them
        # share the machine's cores with the server
        statuses = []
        address = urlsplit(server.url)
        connection = HTTPConnection(address.hostname, address.port, timeout=30)
        try:
            for number, value in enumerate(values[index::THREADS]):
                connection.request(
                    "POST", "/v1/infer", bodies[value], {"Content-Type": "image/png"}
                )
                answer = connection.getresponse()
                answer.read()
                statuses.append(answer.status)
                if stop_on_rollback and number % 100 == 99 and rolled_back(server):
                    break
        finally:
            connection.close()
        return statuses

    with ThreadPoolExecutor(THREADS) as pool:
        statuses = [s for chunk in pool.map(client_work, range(THREADS)) for s in chunk]
    return {status: statuses.count(status) for status in set(statuses)}


def rolled_back(server) -> bool:
    return metric_sum(server, "edgeserve_canary_rollbacks_total") > 0


def config(server) -> dict:
    with server.admin() as admin:
        return admin.get("/admin/config").json()


@pytest.mark.timeout(600)  # about 40 s on an idle 2-core machine, minutes when it is shared
def test_an_identical_flaky_b_survives_20000_requests(tmp_path):
    with running_server(**flaky_models(tmp_path, BRIGHT - 50, BRIGHT - 50)) as server:
        statuses = send(server, shuffled(20_000, {BRIGHT: 0.02}, seed=22), False)
        current = config(server)
        served_b = metric_sum(server, "edgeserve_inferences_total", variant="B")
    assert statuses == {200: 19_600, 500: 400}, statuses
    assert current["last_rollback"] is None and current["ab_weight_b"] == 1, current
    assert served_b > 9_000, served_b


def test_a_b_failing_four_times_as_often_as_a_is_rolled_back(tmp_path):
    # A fails on BRIGHT images (1 %), B on GREY ones too (1 % + 3 %).
    with running_server(**flaky_models(tmp_path, BRIGHT - 50, GREY - 50)) as server:
        send(server, shuffled(20_000, {BRIGHT: 0.01, GREY: 0.03}, seed=22), True)
        current = config(server)
    assert current["ab_weight_b"] == 0, current
    assert current["last_rollback"].startswith("B error rate"), current
