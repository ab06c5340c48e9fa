"""promtool checks of the recording rules and the local Prometheus config.

Skipped when promtool is not installed (Debian: `apt-get install prometheus`), except in CI
(CI=true), where a missing promtool fails.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.observability.live import require_tool

from .assets import (
    PROMETHEUS_CONFIG_PATH,
    REPO,
    RULES_PATH,
    RULES_TEST_PATH,
    repo_path_in_container,
)


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def test_recording_rules_pass_promtool_check_rules(promtool):
    result = run(promtool, "check", "rules", RULES_PATH)
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_prometheus_config_passes_promtool_check_config(promtool, compose, tmp_path):
    # rule_files name in-container paths; point them at the repo files compose mounts there.
    config = yaml.safe_load(PROMETHEUS_CONFIG_PATH.read_text())
    config["rule_files"] = [
        str(repo_path_in_container(compose, "prometheus", path)) for path in config["rule_files"]
    ]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config, sort_keys=False))
    result = run(promtool, "check", "config", copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(RULES_PATH) in result.stdout, result.stdout


def test_recording_rules_pass_their_promtool_unit_tests(promtool):
    result = run(promtool, "test", "rules", RULES_TEST_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
