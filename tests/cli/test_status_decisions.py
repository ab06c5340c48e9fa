"""edgeserve status shows accuracy from feedback (with its Wilson interval) and a quarantine."""

from __future__ import annotations

import re
import shutil

from tests.cli.helpers import admin_args
from tests.support.images import image_b64
from tests.support.models import save_fails_on_real_images
from tests.support.server import REPO, running_server
from tests.support.waiting import wait_until

SECRET = "status-feedback-secret-0123456789abcdef"
RED = {"image_b64": image_b64((255, 0, 0))}


def test_status_shows_accuracy_per_variant_and_the_quarantine_reason(run, tmp_path):
    shutil.copy(REPO / "models" / "vA.onnx", tmp_path / "vA.onnx")
    save_fails_on_real_images(tmp_path / "broken.onnx")
    with running_server(
        MODEL_VA_PATH=str(tmp_path / "vA.onnx"),
        MODEL_VB_PATH=str(tmp_path / "broken.onnx"),
        AB_WEIGHT_B="1",
        CANARY_ENABLED="true",
        STICKY_COOKIE="false",
        FEEDBACK_SECRET=SECRET,
    ) as server:
        with server.client() as client:
            # A answers first, so the guard judges B's run at its fifth failure, not when A first
            # happens to answer after six or more of them.
            forced_a = client.post("/v1/infer", json=RED, headers={"X-Canary": "never"})
            assert forced_a.headers["X-Edgeserve-Variant"] == "A", forced_a.text
            answers = [client.post("/v1/infer", json=RED) for _ in range(40)]
            tokens = [r.json()["feedback_token"] for r in answers if r.status_code == 200]
            for index, token in enumerate(tokens[:10]):
                label = "red" if index < 8 else "green"
                feedback = {"feedback_token": token, "label": label}
                assert client.post("/v1/feedback", json=feedback).status_code == 202
        result = wait_until(
            "edgeserve status to show the quarantine",
            lambda: run("status", "--once", "--interval", "0.2", *admin_args(server.url)),
            lambda status: "quarantined" in status.stdout,
            interval=0,
        )
        assert result.exit_code == 0, result.output
        accuracy = r"accuracy A [0-9a-f]{12} 80\.0% \(95% CI 49\.0% to 94\.3%\) from 10"
        assert re.search(accuracy, result.stdout), result.stdout
        assert "B quarantined (no user traffic): B failed 5 requests in a row" in result.stdout
