"""edgeserve status: per-variant figures since the start or over a window, for a fleet."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

from edgeserve.cli.scrape import histogram_quantile, parse, shadow_counts, variant_views
from edgeserve.cli.status import Watch, feedback_lines
from tests.cli.helpers import Traffic, admin_args
from tests.support.images import ORANGE, image_b64
from tests.support.metrics import metric_sum
from tests.support.server import REPO, running_server
from tests.support.waiting import wait_until

A_AAA = 'model_version="aaa",variant="A"'
"""Slot A serving version aaa, as the labels of its series."""
SERVED_PAIR = 'a_version="aaa",b_version="bbb"'
"""The shadow comparisons of A aaa against the B served now, bbb."""


def metrics_text(a_ok: int, a_err: int, b_ok: int, a_fast: int, a_slow: int) -> str:
    """Exposition text shaped like edgeserve's, with chosen counts."""
    a_total = a_fast + a_slow
    return f"""\
# TYPE edgeserve_inferences_total counter
edgeserve_inferences_total{{outcome="ok",model_version="aaa",variant="A"}} {a_ok}
edgeserve_inferences_total{{outcome="error",model_version="aaa",variant="A"}} {a_err}
edgeserve_inferences_total{{model_version="bbb",outcome="ok",variant="B"}} {b_ok}
# TYPE edgeserve_inference_duration_seconds histogram
edgeserve_inference_duration_seconds_bucket{{le="0.01",stage="total",{A_AAA}}} {a_fast}
edgeserve_inference_duration_seconds_bucket{{le="0.1",stage="total",{A_AAA}}} {a_total}
edgeserve_inference_duration_seconds_bucket{{le="+Inf",stage="total",{A_AAA}}} {a_total}
edgeserve_inference_duration_seconds_bucket{{le="0.01",stage="decode",{A_AAA}}} 999
edgeserve_inference_duration_seconds_count{{stage="total",{A_AAA}}} {a_total}
edgeserve_inference_duration_seconds_sum{{stage="total",{A_AAA}}} 1.0
# TYPE edgeserve_shadow_comparisons_total counter
edgeserve_shadow_comparisons_total{{{SERVED_PAIR},result="agree"}} 9
edgeserve_shadow_comparisons_total{{{SERVED_PAIR},result="disagree"}} 1
edgeserve_shadow_comparisons_total{{a_version="aaa",b_version="yyy",result="disagree"}} 50
# TYPE edgeserve_ab_weight gauge
edgeserve_ab_weight{{variant="A"}} 0.75
edgeserve_ab_weight{{variant="B"}} 0.25
# TYPE edgeserve_state_generation gauge
edgeserve_state_generation 4
# TYPE edgeserve_model_info gauge
edgeserve_model_info{{name="vA",variant="A",version="aaa"}} 1
edgeserve_model_info{{name="old",variant="A",version="zzz"}} 0
edgeserve_model_info{{name="vB",variant="B",version="bbb"}} 1
"""


def test_paired_feedback_is_shown_as_the_pairs_only_one_model_got_right():
    text = """\
# TYPE edgeserve_feedback_paired_total counter
edgeserve_feedback_paired_total{a_outcome="correct",b_outcome="wrong"} 68
edgeserve_feedback_paired_total{a_outcome="wrong",b_outcome="correct"} 18
edgeserve_feedback_paired_total{a_outcome="correct",b_outcome="correct"} 914
"""
    (line,) = [str(line) for line in feedback_lines(parse(text, at=0.0))]
    assert line == (
        "paired (A answers B shadowed): only A right 68, only B right 18 of 1000 (B - A -5.0%)"
    ), line


def test_histogram_quantile_interpolates_within_the_bucket_like_prometheus():
    buckets = {0.01: 50.0, 0.1: 100.0, float("inf"): 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.01)
    assert histogram_quantile(0.75, buckets) == pytest.approx(0.055)
    assert histogram_quantile(0.5, {0.01: 0.0, float("inf"): 0.0}) is None


def test_histogram_quantile_beyond_the_last_bucket_is_its_bound():
    assert histogram_quantile(0.99, {0.1: 1.0, float("inf"): 10.0}) == pytest.approx(0.1)


def test_rates_come_from_the_increase_between_two_scrapes():
    before = parse(metrics_text(a_ok=10, a_err=0, b_ok=5, a_fast=10, a_slow=0), at=100.0)
    after = parse(metrics_text(a_ok=28, a_err=2, b_ok=15, a_fast=20, a_slow=10), at=102.0)
    a, b = variant_views(before, after)
    assert (a.model, b.model) == ("vA aaa", "vB bbb")
    assert a.rps == pytest.approx(10.0) and b.rps == pytest.approx(5.0)
    assert a.traffic == pytest.approx(20 / 30) and a.error_rate == pytest.approx(0.1)
    assert a.weight == 0.75 and after.generation == 4
    assert a.p50 == pytest.approx(0.01) and a.p95 == pytest.approx(0.091)
    assert b.p50 is None and b.error_rate == 0
    assert (shadow_counts(after).agreement, shadow_counts(after).compared) == (
        pytest.approx(0.9),
        10,
    )


def test_status_agreement_counts_only_the_pair_of_versions_served_now():
    after = parse(metrics_text(a_ok=0, a_err=0, b_ok=0, a_fast=0, a_slow=0), at=0.0)
    counts = shadow_counts(after)  # B yyy's 50 disagreements were with an earlier B
    assert (counts.agree, counts.disagree) == (9, 1), counts


def test_a_restarted_server_counts_from_zero_not_negative():
    before = parse(metrics_text(a_ok=100, a_err=0, b_ok=0, a_fast=100, a_slow=0), at=0.0)
    after = parse(metrics_text(a_ok=4, a_err=0, b_ok=0, a_fast=4, a_slow=0), at=1.0)
    a = variant_views(before, after)[0]
    assert a.rps == pytest.approx(4.0), a


def test_without_a_first_scrape_figures_count_since_the_start():
    after = parse(metrics_text(a_ok=28, a_err=2, b_ok=15, a_fast=20, a_slow=10), at=102.0)
    a, b = variant_views(None, after)
    assert (a.requests, b.requests) == (30, 15)
    assert a.error_rate == pytest.approx(2 / 30) and a.traffic == pytest.approx(30 / 45)
    assert a.rps is None, "a rate needs a window"


def test_shadow_agreement_over_a_window_counts_only_its_comparisons():
    before = parse(metrics_text(a_ok=0, a_err=0, b_ok=0, a_fast=0, a_slow=0), at=0.0)
    after = parse(
        metrics_text(a_ok=0, a_err=0, b_ok=0, a_fast=0, a_slow=0).replace("} 9", "} 12"), at=1.0
    )
    counts = shadow_counts(after, before)
    assert (counts.agreement, counts.compared) == (pytest.approx(1.0), 3)


def test_the_baseline_is_the_scrape_a_window_before_the_newest():
    watch = Watch("http://x")
    for at in (0.0, 1.0, 2.0, 3.0, 4.0):
        watch.keep(parse("", at=at), window=2.0)
    assert watch.baseline(2.0).at == 2.0
    assert watch.baseline(None) is None
    assert [s.at for s in watch.history] == [2.0, 3.0, 4.0], "older scrapes are let go"


def rows_of(stdout: str) -> dict[str, list[str]]:
    """Table rows by variant: their cells."""
    rows = [line.split("│")[1:-1] for line in stdout.splitlines() if "│" in line]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows}


def send(url: str, times: int) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(times):
            assert client.post("/v1/infer", json={"image_b64": image_b64((255, 0, 0))}).is_success


def test_status_once_counts_the_traffic_since_the_server_started(run, server):
    send(server.url, 3)
    result = run("status", "--url", server.url, "--once")
    assert result.exit_code == 0, result.output
    rows = rows_of(result.stdout)
    assert set(rows) == {"A", "B"}, result.stdout
    _, model, _, traffic, requests, _, p50, _ = rows["A"]
    assert model == "vA a9fc666bece4" and traffic == "100.0%", rows["A"]
    assert float(requests) >= 3 and p50.endswith("ms"), rows["A"]
    assert "figures since the server started" in result.stdout, result.stdout
    assert "generation 1" in result.stdout and "shadow agreement" in result.stdout


def test_status_measure_gives_rates_over_the_seconds_it_measured(run, server):
    with Traffic(server.url):
        result = run("status", "--url", server.url, "--once", "--measure", "0.5")
    assert result.exit_code == 0, result.output
    headings = next(line for line in result.stdout.splitlines() if "variant" in line)
    assert headings.split("┃")[6].strip() == "req/s", headings
    assert float(rows_of(result.stdout)["A"][5]) > 0, result.stdout
    span = re.search(r"figures over the last ([0-9.]+)s", result.stdout)
    assert span and float(span[1]) >= 0.5, result.stdout  # the time between the two scrapes


def test_status_says_on_stderr_that_it_waits_to_measure(run, server):
    result = run("status", "--url", server.url, "--once", "--measure", "0.2")
    assert result.exit_code == 0, result.output
    assert "measuring 0.2 s of traffic" in result.stderr, result.stderr


def test_status_window_still_measures_and_warns_it_is_now_called_measure(run, server):
    result = run("status", "--url", server.url, "--once", "--window", "0.2")
    assert result.exit_code == 0, result.output
    assert "figures over the last" in result.stdout, result.stdout
    assert "it is now called --measure" in result.stderr, result.stderr


def test_status_latency_columns_say_they_time_the_request_in_the_server(run, server):
    result = run("status", "--url", server.url, "--once")
    assert result.exit_code == 0, result.output
    headings = next(line for line in result.stdout.splitlines() if "variant" in line)
    cells = [cell.strip() for cell in headings.split("┃")[1:-1]]
    assert cells[-2:] == ["p50 in server", "p95 in server"], headings


def test_status_says_when_there_is_no_traffic(run):
    with running_server() as quiet:
        result = run("status", "--url", quiet.url, "--once")
    assert result.exit_code == 0, result.output
    assert "no inference traffic since the server started" in result.stdout, result.stdout


def test_status_watches_every_instance_of_a_fleet(run, server, twin):
    result = run("status", "--url", server.url, "--url", twin.url, "--once")
    assert result.exit_code == 0, result.output
    assert f"edgeserve {server.url} " in result.stdout, result.stdout
    assert f"edgeserve {twin.url} " in result.stdout, result.stdout


def test_status_shows_the_reachable_instances_and_fails_for_a_down_one(run, server, down_url):
    result = run("status", "--url", server.url, "--url", down_url, "--once")
    assert result.exit_code == 1, result.output
    assert f"edgeserve {server.url} " in result.stdout, result.stdout
    assert result.stderr.strip().splitlines() == [
        f'error: cannot reach {down_url} (connection refused): is "edgeserve serve" running?'
    ], result.stderr


def test_status_refreshes_until_the_frame_count_is_reached(run, server):
    started = time.monotonic()
    result = run("status", "--url", server.url, "--count", "3", "--interval", "0.2")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 0.4, "three frames: the first at once, then two intervals"
    assert "variant" in result.stdout, result.stdout


def test_status_against_nothing_is_one_line_naming_the_url(run, down_url):
    result = run("status", "--url", down_url, "--once")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f'error: cannot reach {down_url} (connection refused): is "edgeserve serve" running?'
    ], result.stderr


def metrics_scrapes(server) -> float:
    return metric_sum(server, "edgeserve_http_requests_total", route="/metrics")


def test_status_stops_cleanly_on_ctrl_c(server):
    baseline, polls = metrics_scrapes(server), 1
    process = subprocess.Popen(
        [sys.executable, "-m", "edgeserve", "status", "--url", server.url, "--interval", "0.2"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

    def scrapes_by_status() -> float:
        """/metrics scrapes beyond ours (each of our polls is one), while status runs."""
        nonlocal polls
        assert process.poll() is None, process.communicate()
        polls += 1
        return metrics_scrapes(server) - baseline - polls

    try:
        wait_until(
            "edgeserve status to scrape 3 times",
            scrapes_by_status,
            lambda n: n >= 3,
            timeout=15,
            interval=0.1,
        )
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, (process.returncode, stderr)
    assert "Traceback" not in stderr and stderr.strip() == "", stderr
    assert "variant" in stdout, stdout


def test_a_b_that_shares_no_label_with_a_is_shown_broken_in_words(run, tmp_path):
    shutil.copy(REPO / "models" / "vB.onnx", tmp_path / "alien.onnx")
    labels = {"labels": [f"x{i}" for i in range(9)]}
    (tmp_path / "alien.json").write_text(json.dumps(labels))
    env = {"MODEL_VB_PATH": "", "MODEL_DIR": str(tmp_path)}  # such a pair is refused at start
    with running_server(**env, SHADOW_ENABLED="true", WARMUP_RUNS="0") as server:
        with server.admin() as admin:
            body = {"path": "alien.onnx", "allow_label_change": True}
            assert admin.post("/admin/models/B", json=body).status_code == 200
        send(server.url, 5)
        wait_until(
            "the shadow comparisons to be counted",
            lambda: metric_sum(server, "edgeserve_shadow_comparisons_total") >= 5,
        )
        result = run("status", "--url", server.url, "--once")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert re.search(r"B [0-9a-f]{12} is broken: all 5 comparisons had no common label", text), (
        result.stdout
    )


def test_status_classes_shows_a_top1_against_b_top1_on_the_demo_models(run):
    with running_server(SHADOW_ENABLED="true") as server, server.client() as client:
        for colour in (ORANGE, ORANGE, (255, 0, 0)):
            assert client.post("/v1/infer", json={"image_b64": image_b64(colour)}).is_success
        wait_until(
            "3 class pairs to be counted",
            lambda: metric_sum(server, "edgeserve_shadow_class_pairs_total") >= 3,
        )
        result = run("status", "--once", "--classes", *admin_args(server.url))
    assert result.exit_code == 0, result.output
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    rows = {row[0]: row[1:] for row in cells if row}
    assert rows["yellow"] == ["2", "2", "100.0%", "orange 2"], result.stdout
    assert rows["red"] == ["1", "0", "0.0%", "red 1"], result.stdout


def test_status_classes_without_a_token_is_one_line_and_exit_2(run, server):
    result = run("status", "--once", "--classes", "--url", server.url)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "--token" in result.stderr, result.stderr
