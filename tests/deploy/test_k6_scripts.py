"""The k6 scripts parse, run from stdin, take their scale from env and fail on errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
K6_DIR = REPO_ROOT / "load" / "k6"
SCRIPTS = ["healthz.js", "infer.js", "ab.js"]


def inspect(k6_bin: str, script: str, *env: str, cwd: Path = REPO_ROOT) -> dict[str, Any]:
    """`k6 inspect` the script read from stdin, as `docker run ... k6 run - < script` does."""
    args = [k6_bin, "inspect", "--no-color"]
    for pair in env:
        args += ["-e", pair]
    result = subprocess.run(
        [*args, "-"],
        input=(K6_DIR / script).read_text(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_passes_k6_inspect(k6_bin: str, script: str) -> None:
    result = subprocess.run(
        [k6_bin, "inspect", "--no-color", str(K6_DIR / script)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs_from_stdin_without_local_files(
    k6_bin: str, script: str, tmp_path: Path
) -> None:
    # From an empty folder, any open() or import of a file next to the script would fail.
    options = inspect(k6_bin, script, cwd=tmp_path)
    assert options["scenarios"], options


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_takes_vus_and_duration_from_env(k6_bin: str, script: str) -> None:
    scenarios = inspect(k6_bin, script, "VUS=2", "DURATION=3s")["scenarios"]
    scale = {name: (s.get("vus"), s.get("duration")) for name, s in scenarios.items()}
    assert set(scale.values()) == {(2, "3s")}, scale


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_defaults_to_a_small_scale(k6_bin: str, script: str) -> None:
    scenarios = inspect(k6_bin, script)["scenarios"]
    scale = {name: (s.get("vus"), s.get("duration")) for name, s in scenarios.items()}
    assert set(scale.values()) == {(5, "10s")}, scale


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_fails_on_more_than_one_percent_errors_per_scenario(
    k6_bin: str, script: str
) -> None:
    options = inspect(k6_bin, script)
    for scenario in options["scenarios"]:
        rules = options["thresholds"].get(f"http_req_failed{{scenario:{scenario}}}")
        assert rules == ["rate<0.01"], (scenario, options["thresholds"])


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_bounds_p95_latency_per_scenario(k6_bin: str, script: str) -> None:
    options = inspect(k6_bin, script)
    for scenario in options["scenarios"]:
        rules = options["thresholds"].get(f"http_req_duration{{scenario:{scenario}}}", [])
        assert any(rule.startswith("p(95)<") for rule in rules), (scenario, options["thresholds"])


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_reads_base_url_from_env(script: str) -> None:
    source = (K6_DIR / script).read_text()
    assert "__ENV.BASE_URL" in source
    assert "http://localhost:8080" in source


def test_ab_script_keeps_each_clients_cookies_across_iterations(k6_bin: str) -> None:
    assert inspect(k6_bin, "ab.js")["noCookiesReset"] is True


def test_ab_script_requires_every_client_to_keep_its_variant(k6_bin: str) -> None:
    assert inspect(k6_bin, "ab.js")["thresholds"].get("ab_sticky") == ["rate==1"]


@pytest.mark.parametrize("script", ["infer.js", "ab.js"])
def test_script_splits_latency_per_variant(k6_bin: str, script: str) -> None:
    thresholds = inspect(k6_bin, script)["thresholds"]
    for variant in ("A", "B"):
        assert any(name.endswith(f"{{variant:{variant}}}") for name in thresholds), thresholds


def test_infer_script_loads_binary_uploads_in_a_scenario_of_its_own(k6_bin: str) -> None:
    scenarios = inspect(k6_bin, "infer.js")["scenarios"]
    execs = {name: s.get("exec") for name, s in scenarios.items()}
    assert execs == {"infer": "inferJson", "infer_binary": "inferBinary"}, execs
    assert "'Content-Type': 'image/png'" in (K6_DIR / "infer.js").read_text()
