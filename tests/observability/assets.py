"""Where the observability assets live and how compose maps them into containers (no tests)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_PATH = REPO / "compose.yml"
RULES_PATH = REPO / "prometheus" / "recording_rules.yml"
RULES_TEST_PATH = REPO / "prometheus" / "recording_rules_test.yml"
PROMETHEUS_CONFIG_PATH = REPO / "local" / "prometheus" / "prometheus.yml"
DASHBOARD_PATH = REPO / "grafana" / "dashboards" / "edge-serve-ab.json"
GRAFANA_PROVISIONING = REPO / "local" / "grafana" / "provisioning"
COMPOSE_SCHEMA_PATH = REPO / "tests" / "schemas" / "compose-spec.json"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def service_mounts(compose: dict[str, Any], service: str) -> dict[PurePosixPath, Path]:
    """Container path -> repo path for the bind mounts of one compose service."""
    mounts = {}
    for volume in compose["services"][service].get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        if source.startswith((".", "/")):
            mounts[PurePosixPath(target)] = (REPO / source).resolve()
        # Named volumes hold no repo file.
    return mounts


def repo_path_in_container(
    compose: dict[str, Any], service: str, container_path: str
) -> Path | None:
    """The repo file a service sees at container_path, through a file or directory mount."""
    wanted = PurePosixPath(container_path)
    for target, source in service_mounts(compose, service).items():
        if wanted == target:
            return source
        if wanted.is_relative_to(target):
            return source / wanted.relative_to(target)
    return None
