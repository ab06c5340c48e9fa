"""Shadow comparisons are counted per pair of A and B versions: `edgeserve status` shows the
agreement of the A and B served now, never mixed with an earlier B's."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx

from tests.support.images import ORANGE, image_b64
from tests.support.metrics import metric_sum
from tests.support.server import REPO, Server, running_server
from tests.support.waiting import wait_until

RED = (255, 0, 0)


def models_folder(tmp_path: Path) -> Path:
    """vA, vB, and a copy of vB under another version: a B that agrees with vB as A."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, folder / name)
    model = onnx.load(REPO / "models" / "vB.onnx")
    model.doc_string = "vB under another version"
    onnx.save(model, folder / "agreeing.onnx")
    return folder


def shadowed(server: Server, colour: tuple[int, int, int], times: int, b_version: str) -> None:
    """Answers of A on `colour`, until B `b_version` has compared each of them."""
    before = metric_sum(server, "edgeserve_shadow_comparisons_total", b_version=b_version)
    with server.client() as client:
        for _ in range(times):
            r = client.post("/v1/infer", json={"image_b64": image_b64(colour)})
            assert r.status_code == 200, r.text
    wait_until(
        f"{times} comparisons with B {b_version}",
        lambda: metric_sum(server, "edgeserve_shadow_comparisons_total", b_version=b_version),
        lambda counted: counted >= before + times,
    )


def test_status_shows_the_agreement_of_the_b_served_now_not_of_an_earlier_b(run, tmp_path):
    # After a promote the previous A stays tracked, so the first pair's series stay in /metrics.
    folder = models_folder(tmp_path)
    env = {
        "MODEL_DIR": str(folder),
        "MODEL_VA_PATH": str(folder / "vA.onnx"),
        "MODEL_VB_PATH": str(folder / "vB.onnx"),
        "SHADOW_ENABLED": "true",
        "WARMUP_RUNS": "0",
    }
    with running_server(**env) as server:
        with server.admin() as admin:
            models = admin.get("/admin/config").json()["models"]
        first_b = models["B"]["version"]
        shadowed(server, ORANGE, 4, first_b)  # vB says orange where vA says yellow
        with server.admin() as admin:
            assert admin.post("/admin/promote").status_code == 200
            r = admin.post("/admin/models/B", json={"path": "agreeing.onnx"})
            assert r.status_code == 200, r.text
        second_b = r.json()["loaded"]["version"]
        assert second_b != first_b, r.text
        shadowed(server, RED, 3, second_b)
        assert metric_sum(server, "edgeserve_shadow_comparisons_total", b_version=first_b) == 4
        result = run("status", "--once", "--url", server.url)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "shadow agreement 100.0% of 3 comparisons (3 agree, 0 disagree)" in text, text
    assert f"B {second_b} against A {first_b}" in text, text
