"""A worker killed with kill -9 is replaced within 5 s, with an error log line and a counter."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from edgeserve.server.watchdog import RESTART_LIMIT
from tests.support.metrics import metric_sum
from tests.support.server import base_env, running_server, start_server, stop_server
from tests.support.waiting import wait_until


def worker_pids(main_pid: int) -> set[int]:
    """Sanic's server workers: children started with SANIC_WORKER_NAME=Sanic-Server-..."""
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    pids = set()
    for child in children:
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"SANIC_WORKER_NAME=Sanic-Server" in environ:
            pids.add(int(child))
    return pids


def test_a_killed_worker_is_replaced_within_5_seconds_logged_and_counted():
    with running_server(WORKERS="2") as server:
        main = server.process.pid
        before = worker_pids(main)
        victim = min(before)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_until(
            f"a second worker in place of {victim}",
            lambda: worker_pids(main),
            lambda pids: len(pids) == 2 and victim not in pids,
            timeout=5,
        )
        took = time.monotonic() - killed
        # Logged by the watchdog before it asks for the replacement; read once it is visible.
        wait_until(
            "the worker_died log line",
            lambda: '"worker_died"' in server.output(),
            timeout=5,
            context=lambda: server.output()[-2000:],
        )
        wait_until(
            "edgeserve_worker_restarts_total to reach 1",
            lambda: metric_sum(server, "edgeserve_worker_restarts_total"),
            lambda restarts: restarts == 1,
            timeout=30,
        )
        with server.client() as client:
            wait_until(
                "/ready to answer 200",
                lambda: client.get("/ready").status_code,
                lambda status: status == 200,
                timeout=30,
            )
    assert took < 5, took


def test_a_worker_that_keeps_dying_is_not_replaced_and_ready_says_so():
    with running_server(WORKERS="2") as server:
        main = server.process.pid
        survivor, victim = sorted(worker_pids(main))
        for death in range(3):  # the same worker slot dies three times in a row
            os.kill(victim, signal.SIGKILL)
            if death < 2:
                replacements = wait_until(
                    f"a worker in place of {victim}",
                    lambda gone=victim: worker_pids(main) - {survivor, gone},
                    lambda new: len(new) == 1,
                    timeout=10,
                )
                victim = next(iter(replacements))
        wait_until(
            "the worker_not_replaced log line",
            lambda: '"worker_not_replaced"' in server.output(),
            timeout=10,
            context=lambda: server.output()[-2000:],
        )
        assert worker_pids(main) == {survivor}
        with server.client() as client:
            r = client.get("/ready")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "missing_workers", r.text
        assert r.json()["error"]["message"].startswith("1 of 2 workers kept dying"), r.text


def test_with_no_worker_left_the_main_process_answers_ready_503_missing_workers_at_once():
    server = start_server(base_env(WORKERS="2"))
    try:
        main = server.process.pid
        for death in range(RESTART_LIMIT):  # every worker slot dies RESTART_LIMIT times
            victims = worker_pids(main)
            for victim in victims:
                os.kill(victim, signal.SIGKILL)
            if death < RESTART_LIMIT - 1:
                wait_until(
                    f"two workers in place of {victims}",
                    lambda gone=victims: worker_pids(main),
                    lambda pids, gone=victims: len(pids) == 2 and not pids & gone,
                    timeout=15,
                )
        wait_until("no worker left", lambda: worker_pids(main), lambda pids: not pids, timeout=10)
        asked = time.monotonic()
        # Sent at once: a connection queued before the main process took over is answered too.
        r = httpx.get(server.url + "/ready", headers={"X-Request-ID": "probe-1"}, timeout=10)
        took = time.monotonic() - asked
        with server.client() as client:
            other = client.post("/v1/infer", json={"image_b64": "x"})
    finally:
        exit_code = stop_server(server)  # SIGTERM to the group: it stops answering and exits
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "missing_workers", r.text
    assert r.json()["error"]["message"].startswith("2 of 2 workers kept dying"), r.text
    assert r.json()["trace_id"] == r.headers["trace-id"] == "probe-1", (r.text, r.headers)
    assert r.headers["connection"] == "close", r.headers
    assert took < 2, took
    assert other.status_code == 503 and other.json()["error"]["code"] == "missing_workers"
    assert exit_code == 0, server.output()[-3000:]
    assert "Traceback" not in server.output(), server.output()[-3000:]
