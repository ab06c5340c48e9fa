"""The benchmark's own tools: the MobileNetV2 builder, the payloads and the result writer."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from benchmarks.mobilenet import NUM_CLASSES, build_mobilenet_v2, count_parameters
from benchmarks.payloads import build_payloads
from benchmarks.procs import REPO
from benchmarks.report import evaluate_targets, write_results
from benchmarks.suites import Phase, pipeline_limits


@pytest.fixture(scope="module")
def mobilenet() -> onnx.ModelProto:
    return build_mobilenet_v2()


def test_mobilenet_v2_is_a_valid_model_of_about_3_5m_parameters(mobilenet):
    onnx.checker.check_model(mobilenet, full_check=True)
    params = count_parameters(mobilenet)
    assert 3_400_000 <= params <= 3_600_000, params
    ops = {node.op_type for node in mobilenet.graph.node}
    assert {"Conv", "Clip", "Add", "GlobalAveragePool", "Gemm"} <= ops, ops
    depthwise = [
        n
        for n in mobilenet.graph.node
        if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
    ]
    assert len(depthwise) == 17, len(depthwise)  # one per inverted residual block
    props = {p.key: p.value for p in mobilenet.metadata_props}
    assert json.loads(props["mean"]) == [0.485, 0.456, 0.406], props["mean"]


def test_mobilenet_v2_runs_a_dynamic_batch_to_1000_classes(mobilenet):
    session = ort.InferenceSession(
        mobilenet.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    batch = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    (logits,) = session.run(None, {"image": batch})
    assert logits.shape == (2, NUM_CLASSES), logits.shape
    assert np.isfinite(logits).all()


def test_payloads_are_deterministic_png_224_and_jpeg_640x480():
    first, second = build_payloads(), build_payloads()
    assert first == second
    assert first["png224"].startswith(b"\x89PNG") and first["jpeg640"].startswith(b"\xff\xd8")


def fake_results() -> dict:
    def run(server, model, concurrency, rps, p50, p99, errors=0):
        return {
            "server": server, "server_name": f"{server}-{model}", "label": f"{server}-{model}",
            "model": model, "payload": "png224", "concurrency": concurrency, "seconds": 5.0,
            "requests_ok": int(rps * 5), "errors": errors, "statuses": {"200": int(rps * 5)},
            "rps": rps, "p50_ms": p50, "p95_ms": p50 * 1.5, "p99_ms": p99,
            "client_cpu_seconds": 1.0, "server_cpu_seconds": 2.0,
            "server_cpu_ms_per_request": 3.0,
        }  # fmt: skip

    limit = {"png224": {"rps": 100.0, "best_layout": "2 x 1", "layouts": {}}}
    return {
        "meta": {
            "suite": "main",
            "quick": True,
            "started": "2026-01-01 00:00 UTC",
            "cores": 2,
            "cpu": "test",
            "loadavg_start": 0.1,
            "loadavg_end": 0.2,
            "warmup_seconds": 1,
            "seconds": 5,
            "wall_seconds": 10.0,
        },
        "limit": {"mnv2": limit, "tiny": {"png224": {**limit["png224"], "rps": 1000.0}}},
        "runs": [
            run("edgeserve", "mnv2", 8, 96.0, 80.0, 120.0),
            run("sanic", "mnv2", 8, 60.0, 120.0, 200.0),
            run("fastapi", "mnv2", 8, 50.0, 150.0, 300.0),
            run("edgeserve", "tiny", 8, 500.0, 10.0, 40.0, errors=2),
            run("edgeserve_binary", "tiny", 8, 700.0, 10.0, 15.0),
            run("sanic", "tiny", 8, 400.0, 20.0, 30.0),
            run("fastapi", "tiny", 8, 300.0, 20.0, 50.0),
        ],
        "servers": {
            "edgeserve-tiny": {
                "settings": {"INTRA_OP_THREADS": "1"},
                "peak_rss_mb": {"total": 105.0, "1": 105.0},
                "ready_seconds": 1.9,
            },
        },
    }


def test_results_are_written_as_json_and_a_markdown_table_with_verdicts(tmp_path):
    results = fake_results()
    results["targets"] = evaluate_targets(results)
    verdicts = {t["target"]: t["pass"] for t in results["targets"]}
    assert verdicts["MobileNetV2 PNG224 c8: edgeserve / limit >= 0.95"] is True, verdicts
    assert verdicts["tiny PNG224 c8: edgeserve / FastAPI (JSON) >= 1.6"] is True, verdicts
    assert verdicts["tiny PNG224 c8: edgeserve / sanic >= 1.4"] is False, verdicts
    assert verdicts["tiny PNG224 c8 binary: edgeserve / FastAPI (JSON) >= 2"] is True, verdicts
    assert verdicts["tiny png224 c8: p99 / p50 <= 2"] is False, verdicts
    assert verdicts["tiny png224 binary c8: p99 / p50 <= 2"] is True, verdicts
    assert verdicts["tiny png224 c8: errors <= 0"] is False, verdicts
    assert verdicts["edgeserve, vA + vB loaded, WORKERS=1: peak RSS MB <= 140"] is True
    assert verdicts["edgeserve, vA + vB, WORKERS=1: seconds to /ready <= 1.5"] is False

    json_path, md_path = write_results(results, tmp_path / "results")

    assert json.loads(json_path.read_text())["runs"] == results["runs"]
    table = md_path.read_text()
    assert "| MobileNetV2 | PNG 224x224 | 8 | 100.0 | 96.0 |" in table, table
    assert "| 0.96 | 1.92 |" in table, table
    issue_row = (
        "| tiny demo (vA), PNG 224x224, binary upload | 700.0 | 400.0 | 300.0 | 1000.0 | 0.70 |"
    )
    assert issue_row in table, table
    assert "FAIL" in table and "PASS" in table, table
    assert not list((tmp_path / "results").glob("*.tmp"))


def test_the_containment_ratio_is_each_hazard_s_p99_over_a_s_p99_with_no_b():
    from benchmarks.containment import CASES, _rows
    from benchmarks.loadgen import LoadResult

    def measured(p99_ms: float) -> list[LoadResult]:
        latencies = [1.0] * 99 + [p99_ms] * 2
        return [LoadResult(4, 1.0, len(latencies), 0, {"200": 101}, latencies)]

    rows = _rows({case.name: measured(10.0 * (i + 1)) for i, case in enumerate(CASES)})
    assert [row["p99_ratio"] for row in rows] == [1.0, 2.0, 3.0, 4.0]


def test_the_quantize_table_shows_each_model_s_pipeline_limit_and_their_ratio(tmp_path):
    models = {"fp32": REPO / "models" / "vA.onnx", "int8": REPO / "models" / "vB.onnx"}
    phase = Phase(warmup=0.0, seconds=0.0, limit_seconds=0.05, rounds=1)
    limit = pipeline_limits(models, phase)
    fp32, int8 = (limit["models"][name]["rps"] for name in ("fp32", "int8"))
    assert fp32 > 0 and int8 > 0, limit
    assert limit["ratio"] == round(int8 / fp32, 2)

    results = {"meta": fake_results()["meta"] | {"suite": "quantize"}, "pipeline_limit": limit}
    _, md_path = write_results(results, tmp_path)
    table = md_path.read_text()
    assert f"| fp32 | {fp32:.1f} |" in table, table
    assert f"| ratio | {limit['ratio']:.2f} | |" in table, table
