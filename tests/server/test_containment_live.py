"""A candidate cannot take A down: a B that bombs memory, hangs, crawls or answers NaN on real
images costs A no answer, is rolled back and quarantined by name, and stays out after a restart.

Counted from the clients' side: a request sent and never answered is lost, whatever the server
logged. Memory is bounded by the limit the project puts on its own candidate process
(MODEL_MEMORY_LIMIT_MB); the machine's cgroups are left alone."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.hazards import (
    save_hanging,
    save_hanging_in_warm_up,
    save_memory_bomb,
    save_nan,
    save_slow,
)
from tests.support.images import image_b64
from tests.support.server import REPO, Server, running_server
from tests.support.waiting import wait_until

RED = {"image_b64": image_b64((255, 0, 0))}
CLIENTS = 4
B_TIMEOUT_MS = 3000
"""Each of B's hanging runs lasts this long: a request of A that ever waited behind one would
take seconds."""
NEVER_WAITED_SECONDS = 0.5
"""A's p99 bound while B hangs or crawls. A's own runs take about a millisecond; a 2-core test
machine running the server, B's process and the clients at once puts A's p99 at 10-200 ms, far
below one of B's runs. The ratio to A's p99 with no B (issue 20 asks for 2x) is a speed figure,
measured by `python -m benchmarks --suite containment` and recorded in benchmarks/README.md."""


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: sent and never answered
    variant: str | None
    seconds: float


def hazard_env(tmp_path: Path, save_b: Callable[[Path], Path], name: str, **extra: str) -> dict:
    shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "vA.onnx")
    save_b(tmp_path / f"{name}.onnx")
    return {
        "MODEL_VA_PATH": str(tmp_path / "vA.onnx"),
        "MODEL_VB_PATH": str(tmp_path / f"{name}.onnx"),
        "MODEL_DIR": str(tmp_path),
        "STICKY_COOKIE": "false",
        "STATE_PATH": str(tmp_path / "state" / "state.json"),
        **extra,
    }


def send(server: Server, per_client: int) -> list[Outcome]:
    """CLIENTS keep-alive clients, each sending `per_client` requests back to back."""

    def client_work(_: int) -> list[Outcome]:
        outcomes = []
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for _ in range(per_client):
                started = time.perf_counter()
                try:
                    r = client.post("/v1/infer", json=RED)
                except httpx.HTTPError:
                    outcomes.append(Outcome(None, None, time.perf_counter() - started))
                    continue
                variant = r.headers.get("X-Edgeserve-Variant")
                outcomes.append(Outcome(r.status_code, variant, time.perf_counter() - started))
        return outcomes

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [o for outcomes in pool.map(client_work, range(CLIENTS)) for o in outcomes]


def a_statuses(outcomes: list[Outcome]) -> set[int | None]:
    return {o.status for o in outcomes if o.variant in ("A", None)}


def p99(outcomes: list[Outcome]) -> float:
    a = sorted(o.seconds for o in outcomes if o.variant == "A")
    return a[min(len(a) - 1, int(len(a) * 0.99))]


def config(server: Server) -> dict:
    with server.admin() as admin:
        return admin.get("/admin/config").json()


def wait_for_quarantine(server: Server) -> dict:
    return wait_until(
        "B quarantined", lambda: config(server)["quarantine"], lambda q: q is not None, timeout=30
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_memory_bomb_in_b_costs_a_no_answer_and_is_quarantined_by_name(tmp_path, workers):
    env = hazard_env(
        tmp_path,
        save_memory_bomb,
        "bomb",
        AB_WEIGHT_A="0.8",
        AB_WEIGHT_B="0.2",
        WORKERS=workers,
        MODEL_MEMORY_LIMIT_MB="1024",
    )
    with running_server(**env) as server:
        outcomes = send(server, 40)
        quarantine = wait_for_quarantine(server)
        version = config(server)["models"]["B"]["version"]
    assert a_statuses(outcomes) == {200}, sorted(a_statuses(outcomes), key=str)
    assert any(o.variant == "B" for o in outcomes)
    assert quarantine["reason"].startswith("unsafe: model bomb"), quarantine
    assert version in quarantine["reason"] and "out of memory" in quarantine["reason"]
    with running_server(**env) as server:  # the state names the bomb: it stays out
        again = send(server, 10)
        assert config(server)["quarantine"] == quarantine
    assert {(o.status, o.variant) for o in again} == {(200, "A")}


def test_a_memory_bomb_loaded_after_real_traffic_is_refused_and_the_server_lives(tmp_path):
    save_memory_bomb(tmp_path / "bomb.onnx")
    env = hazard_env(tmp_path, copy_demo_b, "vB", WORKERS="1", MODEL_MEMORY_LIMIT_MB="1024")
    with running_server(**env) as server, server.admin() as admin:
        assert {o.status for o in send(server, 3)} == {200}  # recent real inputs to verify on
        refused = admin.post("/admin/models/B", json={"path": "bomb.onnx"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "model_unsafe", refused.text
        assert "out of memory" in refused.json()["error"]["message"]
        assert {o.status for o in send(server, 3)} == {200}


def p99_env(tmp_path: Path, save_b: Callable[[Path], Path], **extra: str) -> dict:
    return hazard_env(
        tmp_path,
        save_b,
        "b",
        INFERENCE_TIMEOUT_MS=str(B_TIMEOUT_MS),
        CANARY_MIN_SAMPLES="1000000",  # the guard never judges: B keeps misbehaving throughout
        CANARY_MAX_CONSECUTIVE_FAILURES="1000000",
        **extra,
    )


def a_p99_while_b_is_busy(tmp_path: Path, save_b: Callable[[Path], Path], **extra: str) -> float:
    """A's p99 over 4 x 60 requests with B = `save_b` kept busy the whole time: one more client
    forces every request it sends to B, or B shadows every answer of A."""
    with running_server(**p99_env(tmp_path, save_b, **extra)) as server:
        done = threading.Event()

        def keep_b_busy() -> None:
            with server.client() as client:
                while not done.is_set():
                    client.post("/v1/infer", json=RED, headers={"X-Canary": "always"})

        send(server, 5)  # warm
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(keep_b_busy) if extra.get("CANARY_ENABLED") else None
            outcomes = send(server, 60)
            done.set()
        if busy is not None:
            busy.result()
        assert {(o.status, o.variant) for o in outcomes} == {(200, "A")}
        assert config(server)["quarantine"] is None
    return p99(outcomes)


def copy_demo_b(path: Path) -> Path:
    return Path(shutil.copy(REPO / "models" / "vB.onnx", path))


FORCED = {"CANARY_ENABLED": "true"}
SHADOWED = {"SHADOW_ENABLED": "true"}


@pytest.mark.parametrize("traffic", [FORCED, SHADOWED], ids=["b_forced", "b_in_shadow"])
def test_a_never_waits_behind_a_hanging_b(tmp_path, traffic):
    assert a_p99_while_b_is_busy(tmp_path, save_hanging, **traffic) <= NEVER_WAITED_SECONDS


def test_a_never_waits_behind_a_two_second_b_kept_busy(tmp_path):
    assert a_p99_while_b_is_busy(tmp_path, save_slow, **FORCED) <= NEVER_WAITED_SECONDS


def test_sigterm_ends_the_server_within_the_grace_period_while_b_hangs(tmp_path):
    env = hazard_env(
        tmp_path,
        save_hanging,
        "b",
        AB_WEIGHT_B="1",
        INFERENCE_TIMEOUT_MS="60000",
        GRACEFUL_SHUTDOWN_SECONDS="3",
    )
    with running_server(**env) as server:
        with ThreadPoolExecutor(2) as pool:
            pool.submit(send, server, 1)
            time.sleep(1)  # B's run is hanging now
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=15)
        assert time.monotonic() - started < 3 + 2, server.output()


def test_a_model_that_hangs_in_warm_up_is_refused_and_frees_the_model_loader(tmp_path):
    save_hanging_in_warm_up(tmp_path / "stuck.onnx")
    env = hazard_env(tmp_path, copy_demo_b, "vB", INFERENCE_TIMEOUT_MS="500")
    with running_server(**env) as server, server.admin() as admin:
        refused = admin.post("/admin/models/B", json={"path": "stuck.onnx"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "model_unsafe"
        assert "INFERENCE_TIMEOUT_MS" in refused.json()["error"]["message"]
        loaded = admin.post("/admin/models/A", json={"path": "vB.onnx"})
        assert loaded.status_code == 200, loaded.text


def test_a_nan_model_is_refused_at_load_once_real_inputs_were_seen(tmp_path):
    save_nan(tmp_path / "nan.onnx")
    env = hazard_env(tmp_path, copy_demo_b, "vB")
    with running_server(**env) as server, server.admin() as admin:
        assert {o.status for o in send(server, 2)} == {200}
        refused = admin.post("/admin/models/B", json={"path": "nan.onnx"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "model_unsafe"
        assert "non-finite" in refused.json()["error"]["message"]
        assert config(server)["models"]["B"]["path"].endswith("vB.onnx")


def test_nan_scores_are_never_a_200_and_roll_b_back(tmp_path):
    env = hazard_env(tmp_path, save_nan, "nan", AB_WEIGHT_B="1", AB_WEIGHT_A="0")
    with running_server(**env) as server, server.client() as client:
        first = [client.post("/v1/infer", json=RED) for _ in range(5)]
        assert {r.status_code for r in first} == {500}, [r.text for r in first]
        assert all(r.json()["error"]["code"] == "inference_failed" for r in first)
        quarantine = wait_for_quarantine(server)
        assert "non-finite" in quarantine["reason"] and "model nan" in quarantine["reason"]
        after = client.post("/v1/infer", json=RED)
        assert (after.status_code, after.json()["variant"]) == (200, "A")


def test_a_b_the_state_names_that_fails_admission_at_start_is_quarantined_not_crash_looped(
    tmp_path,
):
    env = hazard_env(tmp_path, save_hanging_in_warm_up, "stuck", INFERENCE_TIMEOUT_MS="500")
    with running_server(**env) as server:
        quarantine = wait_for_quarantine(server)
        assert {(o.status, o.variant) for o in send(server, 3)} == {(200, "A")}
    assert quarantine["reason"].startswith("unsafe: model stuck"), quarantine
    assert "INFERENCE_TIMEOUT_MS" in quarantine["reason"]
