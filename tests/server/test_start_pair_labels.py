"""At start the pair of models the environment names passes the labels check a hot load of
the same pair does: a refused pair is a one-line usage error (exit 2), before anything serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.pipelines import PIPELINES, save_probe_model
from tests.support.server import REPO, base_env, free_port


def start(model_a: Path, model_b: Path) -> subprocess.CompletedProcess[str]:
    env = base_env(MODEL_VA_PATH=str(model_a), MODEL_VB_PATH=str(model_b), PORT=str(free_port()))
    return subprocess.run(
        [sys.executable, "-m", "edgeserve", "serve"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,  # it must stop by itself, not serve the pair
    )


def test_a_pair_whose_b_lacks_labels_of_a_is_refused_at_start(tmp_path):
    save_probe_model(tmp_path / "a.onnx", PIPELINES["torchvision"])
    save_probe_model(tmp_path / "b.onnx", PIPELINES["torchvision"], labels=list("vwxyz"))
    finished = start(tmp_path / "a.onnx", tmp_path / "b.onnx")
    assert finished.returncode == 2, finished.stdout + finished.stderr[-3000:]
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("error: MODEL_VB_PATH="), finished.stderr[-3000:]
    assert "slot B's model has no label for 5 of slot A's labels" in last, last
    assert "--allow-label-change" in last, last


def test_a_refused_start_names_the_sidecar_when_b_has_class_n_labels(tmp_path):
    save_probe_model(tmp_path / "a.onnx", PIPELINES["torchvision"])
    save_probe_model(tmp_path / "b.onnx", PIPELINES["torchvision"])
    (tmp_path / "b.json").unlink()
    finished = start(tmp_path / "a.onnx", tmp_path / "b.onnx")
    assert finished.returncode == 2, finished.stdout + finished.stderr[-3000:]
    assert "put its labels in b.json" in finished.stderr, finished.stderr[-3000:]
