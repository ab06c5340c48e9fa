"""A real Prometheus on a free port, scraping a real server, for the live tests (no tests here)."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.server import Server, free_port, wait_for_200
from tests.support.waiting import wait_until

from .assets import RULES_PATH

SCRAPE_JOB = "edgeserve"


def require_tool(name: str) -> str:
    """The tool's path; skip when it is missing, except in CI (CI=true), where that fails."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not on PATH (install it with: apt-get install prometheus)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


class QueryError(Exception):
    """Prometheus refused the query (a parse error, a bad type): polling will not help."""


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    output_path: Path

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant query's samples, as Prometheus's HTTP API gives them."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        if data["resultType"] != "vector":
            raise QueryError(f"expected an instant vector, got a {data['resultType']}")
        return data["result"]

    def scrapes(self, job: str = SCRAPE_JOB) -> int:
        """How many scrapes of job Prometheus has stored (0 before the first)."""
        samples = self.query(f'sum(count_over_time(up{{job="{job}"}}[1h]))')
        return int(float(samples[0]["value"][1])) if samples else 0

    def targets(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=10)
        return response.json()["data"]["activeTargets"]


def has_data(samples: list[dict[str, Any]]) -> bool:
    """True when at least one sample holds a number (NaN draws nothing on a panel)."""
    return any(not math.isnan(float(sample["value"][1])) for sample in samples)


def prometheus_config(target: str, rule_files: list[Path]) -> dict[str, Any]:
    """Scrape and evaluate every second, so 1m windows fill within seconds."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": SCRAPE_JOB, "static_configs": [{"targets": [target]}]}],
    }


def start_prometheus(binary: str, folder: Path, target: str) -> Prometheus:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(target, [RULES_PATH]), sort_keys=False))
    port = free_port()
    output = folder / "prometheus.log"
    with open(output, "wb") as sink:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            cwd=folder,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Prometheus(f"http://127.0.0.1:{port}", process, output)


def wait_until_prometheus_ready(prometheus: Prometheus, timeout: float = 30.0) -> None:
    wait_for_200(
        "prometheus", f"{prometheus.url}/-/ready", prometheus.process, prometheus.output, timeout
    )


def stop_process_group(process: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except ProcessLookupError:
        pass


@contextmanager
def running_prometheus(binary: str, folder: Path, target: str) -> Iterator[Prometheus]:
    prometheus = start_prometheus(binary, folder, target)
    try:
        wait_until_prometheus_ready(prometheus)
        yield prometheus
    finally:
        stop_process_group(prometheus.process)


def fail_if_dead(server: Server, prometheus: Prometheus) -> None:
    """Stop waiting as soon as either process has exited, with what it printed."""
    if server.process.poll() is not None:
        pytest.fail(
            f"edgeserve exited with {server.process.returncode}:\n{server.output()[-4000:]}"
        )
    if prometheus.process.poll() is not None:
        pytest.fail(
            f"prometheus exited with {prometheus.process.returncode}:\n"
            f"{prometheus.output()[-4000:]}"
        )


def wait_for_scrapes(
    server: Server, prometheus: Prometheus, count: int, timeout: float = 30.0
) -> int:
    """Block until Prometheus has stored `count` scrapes of the server; answers the count."""

    def scrapes() -> int:
        fail_if_dead(server, prometheus)
        return prometheus.scrapes()

    return wait_until(
        f"prometheus to store {count} scrapes of {server.url}",
        scrapes,
        lambda stored: stored >= count,
        timeout=timeout,
        interval=0.2,
        context=lambda: f"targets: {prometheus.targets()}\n{prometheus.output()[-2000:]}",
    )
