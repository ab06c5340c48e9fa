"""The measured phase with Debian's wrk: about 2 % of a core at 200 req/s, a third of the raw
client's, so nearly all of the two cores go to the server (as in issue 14's own harness)."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.loadgen import LoadResult

SCRIPT = Path(__file__).with_name("wrk_post.lua")
_SUMMARY = re.compile(
    r"EDGEBENCH requests=(\d+) duration_us=(\d+) non2xx=(\d+) socket_errors=(\d+)"
)
_QUANTILES = re.compile(r"EDGEBENCH quantiles_us=([0-9,]+)")


def available() -> bool:
    return shutil.which("wrk") is not None


def parse(output: str, concurrency: int, client_cpu_seconds: float) -> LoadResult:
    """The script's two EDGEBENCH lines as a LoadResult; latencies are 999 quantiles, which
    pool across rounds like samples of equal weight."""
    summary = _SUMMARY.search(output)
    quantiles = _QUANTILES.search(output)
    if summary is None or quantiles is None:
        raise RuntimeError(f"wrk printed no summary:\n{output[-2000:]}")
    requests, duration_us, non2xx, socket_errors = map(int, summary.groups())
    ok = requests - non2xx
    statuses = {"200": ok} if ok else {}
    if non2xx:
        statuses["non-2xx"] = non2xx
    if socket_errors:
        statuses["socket-error"] = socket_errors
    return LoadResult(
        concurrency=concurrency,
        seconds=duration_us / 1e6,
        ok=ok,
        errors=non2xx + socket_errors,
        statuses=statuses,
        latencies_ms=[int(us) / 1000.0 for us in quantiles.group(1).split(",")] if ok else [],
        client_cpu_seconds=client_cpu_seconds,
    )


def measure(
    url: str,
    body: bytes,
    *,
    path: str,
    content_type: str,
    concurrency: int,
    seconds: float,
    server_cpu: Callable[[], float] | None,
) -> LoadResult:
    """One closed-loop phase of `concurrency` connections on one wrk thread, whole seconds."""
    with tempfile.NamedTemporaryFile(prefix="edgebench-body-") as body_file:
        body_file.write(body)
        body_file.flush()
        env = {**os.environ, "EDGEBENCH_BODY": body_file.name, "EDGEBENCH_TYPE": content_type}
        argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
        argv += ["-s", str(SCRIPT), url + path]
        server_before = server_cpu() if server_cpu else 0.0
        children_before = _children_cpu()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        client_cpu = _children_cpu() - children_before
        server_seconds = server_cpu() - server_before if server_cpu else None
    result = parse(done.stdout + done.stderr, concurrency, client_cpu)
    result.server_cpu_seconds = server_seconds
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
