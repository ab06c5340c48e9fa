"""The wrk load generator of `make bench`: its summary is read right, and it drives a server."""

from __future__ import annotations

import os
import shutil

import pytest

from benchmarks import wrk
from benchmarks.procs import ServerProcess
from tests.support.images import image_bytes
from tests.support.server import running_server

QUANTILES = ",".join(str(1000 + i) for i in range(999))


def require_wrk() -> None:
    if shutil.which("wrk"):
        return
    message = "wrk is not on PATH (install it with: apt-get install wrk)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


def test_wrk_summary_counts_non_2xx_and_socket_errors_as_errors():
    output = (
        "Running 2s test @ http://127.0.0.1:1/v1/infer\n"
        "EDGEBENCH requests=100 duration_us=2000000 non2xx=3 socket_errors=2\n"
        f"EDGEBENCH quantiles_us={QUANTILES}\n"
    )
    result = wrk.parse(output, concurrency=8, client_cpu_seconds=0.05)
    assert (result.ok, result.errors, result.seconds) == (97, 5, 2.0)
    assert result.statuses == {"200": 97, "non-2xx": 3, "socket-error": 2}
    assert result.rps == 48.5
    assert result.percentile(50) == pytest.approx(1.499, abs=0.002)


def test_wrk_without_its_summary_is_an_error_that_shows_its_output():
    with pytest.raises(RuntimeError, match="unable to connect"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused", 8, 0.0)


def test_wrk_drives_a_real_server_with_the_binary_upload():
    require_wrk()
    with running_server(LOG_LEVEL="warning") as server:
        process = ServerProcess("wrk", server.url, server.process, server.output_path, None)  # type: ignore[arg-type]
        result = wrk.measure(
            server.url,
            image_bytes((255, 0, 0)),
            path="/v1/infer?top_k=1",
            content_type="image/png",
            concurrency=2,
            seconds=1,
            server_cpu=process.cpu_seconds,
        )
    assert result.ok > 10 and result.errors == 0, result.statuses
    assert len(result.latencies_ms) == 999
    assert result.server_cpu_seconds and result.server_cpu_seconds > 0
