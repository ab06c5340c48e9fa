"""edgeserve load report on a real k6 JSON stream from a real server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.server import REPO, running_server


@pytest.fixture(scope="module")
def k6_stream(k6_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("k6") / "ab.json"
    # 12 sticky clients at 50/50: all on one variant has odds 2 in 4096.
    with running_server(AB_WEIGHT_A="0.5", AB_WEIGHT_B="0.5") as server:
        result = subprocess.run(
            [k6_bin, "run", "--quiet", "--no-summary", "-e", f"BASE_URL={server.url}",
             "-e", "VUS=12", "-e", "DURATION=3s", "--out", f"json={out}", "load/k6/ab.js"],
            cwd=REPO, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeserve", "load", "report", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_report_summarises_all_requests_and_each_variant(k6_stream):
    result = report(str(k6_stream), "--json", "--no-plot")
    assert result.returncode == 0, result.stderr
    rows = {row["group"]: row for row in json.loads(result.stdout)["summaries"]}
    assert set(rows) >= {"all", "A", "B"}, rows
    assert rows["all"]["requests"] >= rows["A"]["requests"] + rows["B"]["requests"] > 0
    assert rows["all"]["errors"] == 0
    assert 0 < rows["all"]["p50_ms"] <= rows["all"]["p95_ms"] <= rows["all"]["p99_ms"]
    assert rows["all"]["requests_per_second"] > 0


def test_report_writes_a_latency_png(k6_stream, tmp_path):
    picture = tmp_path / "latency.png"
    result = report(str(k6_stream), "--plot", str(picture))
    assert result.returncode == 0, result.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "p95 ms" in result.stdout


def test_report_on_a_file_that_is_not_k6_output_fails_in_one_line(tmp_path):
    bogus = tmp_path / "bogus.json"
    bogus.write_text("hello\n")
    result = report(str(bogus))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "not JSON" in result.stderr
