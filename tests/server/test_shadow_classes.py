"""Per-class flips on a real server: GET /admin/shadow and the bounded class-pair metric."""

from __future__ import annotations

import io
import random
import shutil

from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.support.images import ORANGE, image_b64
from tests.support.metrics import metric_sum
from tests.support.models import save_many_labels
from tests.support.server import REPO, running_server
from tests.support.waiting import wait_until

PAIRS = "edgeserve_shadow_class_pairs_total"
DEMO_TRAFFIC = [ORANGE, (255, 0, 0), ORANGE, (0, 0, 255)]
"""vA answers yellow for orange, vB orange: two flips; red and blue are kept."""


def compared(server, count: int) -> None:
    """Until `count` shadow runs are compared (or dropped at the in-flight cap)."""

    def settled() -> float:
        return metric_sum(server, PAIRS) + metric_sum(server, "edgeserve_shadow_dropped_total")

    wait_until(f"{count} shadow comparisons", settled, lambda n: n == count)


def shadow_view(server) -> dict:
    with server.admin() as admin:
        answer = admin.get("/admin/shadow")
    assert answer.status_code == 200, answer.text
    return answer.json()


def send(server, colours) -> None:
    with server.client() as client:
        for colour in colours:
            assert client.post("/v1/infer", json={"image_b64": image_b64(colour)}).is_success


def test_admin_shadow_shows_the_demo_models_flipping_yellow_to_orange():
    with running_server(SHADOW_ENABLED="true") as server:
        send(server, DEMO_TRAFFIC)
        compared(server, 4)
        rows = {row["a_label"]: row for row in shadow_view(server)["classes"]}
    assert rows["yellow"]["b_labels"] == {"orange": 2}, rows
    assert (rows["yellow"]["changed"], rows["yellow"]["compared"]) == (2, 2), rows
    assert rows["red"]["b_labels"] == {"red": 1} and rows["red"]["flip_rate"] == 0, rows


def test_admin_shadow_needs_the_admin_token():
    with running_server(SHADOW_ENABLED="true") as server, server.client() as client:
        answer = client.get("/admin/shadow")
    assert answer.status_code == 401, answer.text


def test_class_counts_start_again_when_a_new_b_is_loaded(tmp_path):
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, tmp_path / name)
    shutil.copy(REPO / "models" / "vB.onnx", tmp_path / "vC.onnx")
    (tmp_path / "vC.json").write_text('{"interpolation": "bicubic"}')  # another version
    env = {f"MODEL_V{s}_PATH": str(tmp_path / f"v{s}.onnx") for s in "AB"}
    with running_server(SHADOW_ENABLED="true", MODEL_DIR=str(tmp_path), **env) as server:
        send(server, DEMO_TRAFFIC)
        compared(server, 4)
        with server.admin() as admin:
            assert admin.post("/admin/models/B", json={"path": "vC.onnx"}).status_code == 200
        view = shadow_view(server)
        assert view["classes"] == [] and view["b"]["name"] == "vC", view
        send(server, [ORANGE])
        compared(server, 1)  # vB's series left /metrics with vB
        (row,) = shadow_view(server)["classes"]
    assert (row["a_label"], row["b_labels"]) == ("yellow", {"orange": 1}), row


def noise_png(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (8, 8), rng.randbytes(8 * 8 * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_model_with_100_labels_cannot_grow_the_metric_past_21_labels_per_axis(tmp_path):
    save_many_labels(tmp_path / "a.onnx", seed=1)
    save_many_labels(tmp_path / "b.onnx", seed=2)
    env = {"MODEL_VA_PATH": str(tmp_path / "a.onnx"), "MODEL_VB_PATH": str(tmp_path / "b.onnx")}
    rng = random.Random(22)
    with running_server(SHADOW_ENABLED="true", **env) as server, server.client() as client:
        answered = set()
        for _ in range(300):
            body = noise_png(rng)
            r = client.post("/v1/infer", content=body, headers={"Content-Type": "image/png"})
            answered.add(r.json()["predictions"][0]["label"])
        compared(server, 300)
        metrics = client.get("/metrics").text
    names = {
        value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == PAIRS
        for value in (sample.labels["a_label"], sample.labels["b_label"])
    }
    assert len(answered) > 21, f"A gave only {len(answered)} labels: the test proves nothing"
    assert len(names) <= 21 and "other" in names, sorted(names)


def label_names(view: dict) -> set[str]:
    """The labels /admin/shadow shows by name, as A's answer or as B's."""
    rows = view["classes"]
    return {row["a_label"] for row in rows} | {b for row in rows for b in row["b_labels"]}


def a_label(client, body: bytes) -> str:
    """A's top-1 label for a PNG (every answer is A's: B has no weight, it is shadowed)."""
    r = client.post("/v1/infer", content=body, headers={"Content-Type": "image/png"})
    assert r.is_success and r.json()["variant"] == "A", r.text
    return r.json()["predictions"][0]["label"]


def test_a_new_b_names_the_label_a_answered_most_even_after_20_others_came_first(tmp_path):
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        save_many_labels(tmp_path / f"{name}.onnx", seed=seed)
    env = {"MODEL_VA_PATH": str(tmp_path / "a.onnx"), "MODEL_VB_PATH": str(tmp_path / "b.onnx")}
    rng = random.Random(7)
    settings = {"SHADOW_ENABLED": "true", "SHADOW_MAX_INFLIGHT": "100", "MODEL_DIR": str(tmp_path)}
    with running_server(**settings, **env) as server, server.client() as client:
        sent = 0
        while len(label_names(shadow_view(server))) < 20:  # the names B's first life gave
            a_label(client, noise_png(rng))
            sent += 1
            compared(server, sent)
        named = label_names(shadow_view(server))
        frequent = noise_png(rng)
        while (label := a_label(client, frequent)) in named:  # A's answer B's names left out
            sent += 1
            frequent = noise_png(rng)
        sent += 1
        for _ in range(30):
            a_label(client, frequent)
        compared(server, sent + 30)
        assert label not in label_names(shadow_view(server)), "counted as other while B lives"
        with server.admin() as admin:
            assert admin.post("/admin/models/B", json={"path": "c.onnx"}).status_code == 200
        a_label(client, frequent)
        compared(server, 1)  # the earlier B's series left /metrics with it
        rows = {row["a_label"]: row for row in shadow_view(server)["classes"]}
    assert label not in named and rows[label]["compared"] == 1, rows
