"""Each k6 script passes its thresholds and checks against a real `edgeserve serve` process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import REPO, Server, running_server

K6_DIR = REPO / "load" / "k6"
SCRIPTS = ["healthz.js", "infer.js", "ab.js"]
K6_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server(AB_WEIGHT_B="0.5", LOG_LEVEL="warning") as running:
        yield running


@dataclass
class K6Run:
    script: str
    returncode: int
    output: str
    summary: dict[str, Any]


@pytest.fixture(scope="module", params=SCRIPTS)
def k6_run(
    request: pytest.FixtureRequest,
    server: Server,
    k6_bin: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> K6Run:
    script: str = request.param
    summary_path = tmp_path_factory.mktemp("k6-live") / f"{Path(script).stem}.json"
    result = subprocess.run(
        [
            k6_bin,
            "run",
            "--quiet",
            "--no-color",
            "-e",
            f"BASE_URL={server.url}",
            "-e",
            "VUS=2",
            "-e",
            "DURATION=3s",
            "--summary-export",
            str(summary_path),
            str(K6_DIR / script),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=K6_TIMEOUT_S,
    )
    output = (result.stdout + result.stderr)[-6000:]
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if server.process.poll() is not None:
        pytest.fail(f"server died during {script}:\n{server.output()}")
    return K6Run(script, result.returncode, output, summary)


def test_k6_script_passes_its_thresholds(k6_run: K6Run) -> None:
    # k6 exits 99 when a threshold is crossed.
    assert k6_run.returncode == 0, f"{k6_run.script} exited {k6_run.returncode}:\n{k6_run.output}"


def test_k6_script_passes_every_check(k6_run: K6Run) -> None:
    checks = k6_run.summary.get("metrics", {}).get("checks")
    assert checks, f"{k6_run.script}: no checks in the summary:\n{k6_run.output}"
    assert checks["passes"] > 0 and checks["fails"] == 0, (checks, k6_run.output)


@pytest.mark.parametrize("script", SCRIPTS)
def test_k6_script_runs_with_only_vus_and_duration_on_the_command_line(
    script: str, server: Server, k6_bin: str
) -> None:
    # The most common way to run k6: --vus/--duration replace the scenarios with one that runs
    # the script's default export.
    result = subprocess.run(
        [
            *(k6_bin, "run", "--quiet", "--no-color", "--vus", "2", "--duration", "3s"),
            *("-e", f"BASE_URL={server.url}", str(K6_DIR / script)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=K6_TIMEOUT_S,
    )
    output = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{output}"
