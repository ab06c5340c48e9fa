"""Shadow comparison on a real server (the guard: test_canary_guard_live.py)."""

from __future__ import annotations

import json
import shutil
import time

from edgeserve.inference.model import file_version
from tests.support.images import ORANGE, image_b64
from tests.support.metrics import metric_sum
from tests.support.models import save_fails_on_real_images, save_slow
from tests.support.server import REPO, running_server
from tests.support.waiting import wait_until

RED = {"image_b64": image_b64((255, 0, 0))}


def failing_b_models(tmp_path):
    shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "vA.onnx")
    save_fails_on_real_images(tmp_path / "broken.onnx")
    return {
        "MODEL_VA_PATH": str(tmp_path / "vA.onnx"),
        "MODEL_VB_PATH": str(tmp_path / "broken.onnx"),
    }


def test_demo_disagreements_show_up_in_shadow_metrics():
    with running_server(SHADOW_ENABLED="true") as server, server.client() as client:
        for colour in [ORANGE, (255, 0, 0), ORANGE, (0, 0, 255)]:
            r = client.post("/v1/infer", json={"image_b64": image_b64(colour)})
            assert r.headers["X-Edgeserve-Variant"] == "A"
        # Shadow runs finish after the answers: wait for all four before reading any count.
        wait_until(
            "4 shadow comparisons",
            lambda: metric_sum(server, "edgeserve_shadow_comparisons_total"),
            lambda compared: compared == 4,
        )
        assert metric_sum(server, "edgeserve_shadow_comparisons_total", result="disagree") == 2
        assert metric_sum(server, "edgeserve_shadow_comparisons_total", result="agree") == 2
        assert metric_sum(server, "edgeserve_shadow_topk_overlap_count") == 4
        assert '"event": "shadow_disagreement"' in server.output()
        assert '"b_top1": "orange"' in server.output()


def disagreements_logged(server) -> list[dict]:
    lines = (line for line in server.output().splitlines() if line.startswith("{"))
    return [e for e in map(json.loads, lines) if e.get("event") == "shadow_disagreement"]


def test_a_disagreement_log_names_the_versions_of_a_and_b():
    with running_server(SHADOW_ENABLED="true") as server, server.client() as client:
        assert client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)}).is_success
        (line,) = wait_until("the disagreement to be logged", lambda: disagreements_logged(server))
    a, b = (file_version(REPO / "models" / name) for name in ("vA.onnx", "vB.onnx"))
    assert (line["a_version"], line["b_version"]) == (a, b), line


def test_a_b_of_the_version_a_serves_is_not_shadowed(tmp_path):
    shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "twin.onnx")
    env = {"MODEL_VB_PATH": str(tmp_path / "twin.onnx"), "MODEL_DIR": str(REPO / "models")}
    with running_server(SHADOW_ENABLED="true", **env) as server, server.client() as client:
        for _ in range(5):
            assert client.post("/v1/infer", json=RED).is_success
        time.sleep(0.5)  # an absence cannot be polled for: give shadow runs time to be counted
        served = metric_sum(server, "edgeserve_inferences_total")
        assert (served, metric_sum(server, "edgeserve_shadow_comparisons_total")) == (5, 0)


def test_failing_shadow_never_fails_the_request(tmp_path):
    env = failing_b_models(tmp_path)
    # None dropped: with the default cap, shadow runs still queued for B's process when more
    # arrive are dropped, and fewer than 10 would fail.
    with (
        running_server(SHADOW_ENABLED="true", SHADOW_MAX_INFLIGHT="10", **env) as server,
        server.client() as client,
    ):
        statuses = [client.post("/v1/infer", json=RED).status_code for _ in range(10)]
        assert statuses == [200] * 10
        wait_until(
            "10 shadow errors",
            lambda: metric_sum(server, "edgeserve_shadow_errors_total"),
            lambda errors: errors == 10,
        )


def test_shadow_beyond_the_in_flight_cap_is_dropped_and_counted():
    with running_server(SHADOW_ENABLED="true", SHADOW_MAX_INFLIGHT="0") as server:
        with server.client() as client:
            for _ in range(5):
                assert client.post("/v1/infer", json=RED).status_code == 200
        assert metric_sum(server, "edgeserve_shadow_dropped_total") == 5
        assert metric_sum(server, "edgeserve_shadow_comparisons_total") == 0


def test_shadow_runs_up_to_the_cap_and_drops_the_rest(tmp_path):
    shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "vA.onnx")
    slow_b = save_slow(tmp_path / "slow.onnx", img_size=1536)  # seconds per shadow run
    env = {"MODEL_VA_PATH": str(tmp_path / "vA.onnx"), "MODEL_VB_PATH": str(slow_b)}
    with running_server(
        SHADOW_ENABLED="true", SHADOW_MAX_INFLIGHT="1", WARMUP_RUNS="0", **env
    ) as server:
        with server.client() as client:
            for _ in range(4):  # A answers in milliseconds, while the first shadow still runs
                assert client.post("/v1/infer", json=RED).status_code == 200

        def shadows() -> tuple[float, float]:
            return (
                metric_sum(server, "edgeserve_shadow_comparisons_total"),
                metric_sum(server, "edgeserve_shadow_dropped_total"),
            )

        compared, dropped = wait_until(
            "all 4 shadows compared or dropped", shadows, lambda seen: sum(seen) == 4, timeout=60
        )
    # The first shadow runs; the three that come while it still runs are over the cap of 1.
    assert (compared, dropped) == (1, 3)
