"""WORKERS=1 without a metrics folder counts in memory (docs/operations.md, variables)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support.images import image_b64
from tests.support.server import base_env, start_server, stop_server


def test_an_empty_metrics_folder_variable_counts_in_memory_not_in_the_working_folder(
    tmp_path: Path,
):
    server = start_server(base_env(PROMETHEUS_MULTIPROC_DIR=""), cwd=tmp_path)
    try:
        answer = httpx.post(
            server.url + "/v1/infer", json={"image_b64": image_b64((255, 0, 0))}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
    finally:
        stop_server(server)
    assert re.search(
        r'edgeserve_inferences_total\{model_version="[0-9a-f]{12}",outcome="ok",variant="A"\} 1\.0',
        metrics,
    ), metrics
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == []
