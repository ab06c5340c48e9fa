"""WORKERS=1 fits a small device: one process, both demo models, a small peak memory.

Issue 14's target is 140 MB for the whole process group; the bound here leaves room for
allocator and library differences between machines. Time to /ready is measured by
`make bench`, not here (speed belongs in benchmarks, not in timed tests).
"""

from __future__ import annotations

import pytest

from benchmarks.payloads import build_payloads
from benchmarks.procs import group_peak_rss_mb, group_pids
from tests.support.server import running_server

PEAK_RSS_BOUND_MB = 160


@pytest.fixture(scope="module")
def single_worker():
    # Shadow on: every request also runs on B, so both sessions do real work.
    with running_server(WORKERS="1", SHADOW_ENABLED="true") as server:
        yield server


def test_workers_1_serves_from_one_process_with_no_helpers(single_worker):
    assert group_pids(single_worker.process.pid) == [single_worker.process.pid]


def test_workers_1_peak_memory_serving_both_demo_models_stays_small(single_worker):
    payloads = build_payloads()
    with single_worker.client() as client:
        for _ in range(10):
            for data in payloads.values():
                r = client.post(
                    "/v1/infer",
                    content=data,
                    params={"img_size": 224},
                    headers={"Content-Type": "application/octet-stream"},
                )
                assert r.status_code == 200, r.text
    peak = group_peak_rss_mb(single_worker.process.pid)
    assert peak["total"] <= PEAK_RSS_BOUND_MB, peak
