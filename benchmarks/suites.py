"""Benchmark suites: `main` (the issue's table), `fastpath` (one change at a time), `scaling`."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from benchmarks import inprocess
from benchmarks.containment import containment_suite
from benchmarks.loadgen import LoadResult, load
from benchmarks.mobilenet import ensure_mobilenet
from benchmarks.payloads import build_payloads
from benchmarks.procs import (
    REPO,
    ServerProcess,
    edgeserve_argv,
    fastapi_argv,
    sanic_argv,
    start_server,
    stop_server,
)
from benchmarks.quantized import ensure_int8
from benchmarks.report import evaluate_targets

CACHE_DIR = REPO / "benchmarks" / ".cache"
TINY_A = REPO / "models" / "vA.onnx"
TINY_B = REPO / "models" / "vB.onnx"
# What every edgeserve run sets: no rate limit (one client address sends everything) and
# no per-request log line (LOG_LEVEL=info is measured on its own in the fastpath suite).
EDGESERVE_BASE = {"RATE_LIMIT_RPS": "0", "LOG_LEVEL": "warning", "WORKERS": "1"}
# Where edgeserve runs from: this checkout, or `--source DIR` for the main and scaling suites.
SOURCE: dict[str, Path] = {"edgeserve": REPO}
# The load generator, set from --client: "wrk", "raw" (a bare HTTP/1.1 client) or "httpx".
CLIENT: dict[str, str] = {"kind": "raw"}
# The settings the main table runs edgeserve with: chosen by the fastpath suite.
EDGESERVE_TUNED = {"INTRA_OP_THREADS": "1"}


@dataclass(frozen=True)
class Phase:
    """Seconds of warm-up and of measurement for each load run, and for each limit layout."""

    warmup: float
    seconds: float
    limit_seconds: float
    rounds: int  # main suite: limit, edgeserve and FastAPI alternate this many times


# Four short rounds rather than two long ones: on a shared machine a busy spell of a few
# seconds then lands in every column's rounds alike instead of in one column's only.
FULL = Phase(warmup=1.0, seconds=2.0, limit_seconds=0.625, rounds=4)
QUICK = Phase(warmup=0.5, seconds=1.5, limit_seconds=0.5, rounds=1)
REWARM_SECONDS = 0.3  # before each later round: the connections are open, the server warm


BASELINE_ARGV = {"fastapi": fastapi_argv, "sanic": sanic_argv}
# The binary-upload form: the file is the body, top_k in the query.
BINARY_PATH = "/v1/infer?top_k=5"
BINARY_TYPE = "application/octet-stream"


@dataclass
class ServerSpec:
    """One server to start: edgeserve or a baseline, on one model, with settings."""

    name: str
    kind: str  # "edgeserve", "sanic" or "fastapi"
    model: str  # "mnv2" or "tiny"
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadSpec:
    payload: str
    concurrency: int


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def model_paths() -> dict[str, Path]:
    return {"mnv2": ensure_mobilenet(CACHE_DIR), "tiny": TINY_A}


def _server_env(spec: ServerSpec, paths: dict[str, Path]) -> dict[str, str]:
    if spec.kind in BASELINE_ARGV:
        return {"MODEL_PATH": str(paths[spec.model]), "LOG_LEVEL": "warning", **spec.settings}
    models = (
        {"MODEL_VA_PATH": str(TINY_A), "MODEL_VB_PATH": str(TINY_B)}
        if spec.model == "tiny"
        else {"MODEL_VA_PATH": str(paths[spec.model]), "MODEL_VB_PATH": ""}
    )
    return {**EDGESERVE_BASE, **models, **spec.settings}


def uses_uvloop(server: ServerProcess) -> bool:
    """Whether uvloop is loaded in every serving process (those that loaded onnxruntime)."""
    serving = []
    for pid in server.group():
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        if "onnxruntime" in maps:
            serving.append("uvloop" in maps)
    return bool(serving) and all(serving)


def _bodies(payloads: dict[str, bytes]) -> dict[str, bytes]:
    import base64

    return {
        name: orjson.dumps({"image_b64": base64.b64encode(data).decode(), "top_k": 5})
        for name, data in payloads.items()
    }


def _meta(suite: str, phase: Phase, quick: bool) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "suite": suite,
        "quick": quick,
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": commit,
        "edgeserve_source": str(SOURCE["edgeserve"]),
        "client": CLIENT["kind"],
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "loadavg_start": round(os.getloadavg()[0], 2),
        "warmup_seconds": phase.warmup,
        "seconds": phase.seconds,
        "limit_seconds": phase.limit_seconds,
        "rounds": phase.rounds,
    }


def _finish(results: dict[str, Any], started: float) -> dict[str, Any]:
    results["meta"]["loadavg_end"] = round(os.getloadavg()[0], 2)
    results["meta"]["wall_seconds"] = round(time.monotonic() - started, 1)
    return results


def _start(spec: ServerSpec, paths: dict[str, Path]) -> ServerProcess:
    argv = edgeserve_argv() if spec.kind == "edgeserve" else BASELINE_ARGV[spec.kind]()
    cwd = SOURCE["edgeserve"] if spec.kind == "edgeserve" else REPO
    return start_server(spec.name, argv, _server_env(spec, paths), "/ready", cwd=cwd)


def _server_info(spec: ServerSpec, server: ServerProcess) -> dict[str, Any]:
    return {
        "kind": spec.kind,
        "model": spec.model,
        "settings": spec.settings,
        "peak_rss_mb": server.peak_rss_mb(),
        "ready_seconds": round(server.ready_seconds, 2),
        "uvloop": uses_uvloop(server),
    }


@dataclass(frozen=True)
class MainLoad:
    """One load of the main table: which server, in which form, at which concurrency."""

    run_name: str  # the run's "server" field
    spec_name: str
    concurrency: int
    binary: bool = False


def main_loads(model: str) -> list[MainLoad]:
    """edgeserve and FastAPI at 1 and 8; plain Sanic and edgeserve's binary form at 8."""
    edgeserve, sanic, fastapi = (f"{kind}-{model}" for kind in ("edgeserve", "sanic", "fastapi"))
    return [
        MainLoad("edgeserve", edgeserve, 1),
        MainLoad("edgeserve", edgeserve, 8),
        MainLoad("edgeserve_binary", edgeserve, 8, binary=True),
        MainLoad("sanic", sanic, 8),
        MainLoad("fastapi", fastapi, 1),
        MainLoad("fastapi", fastapi, 8),
    ]


def main_suite(quick: bool, source: Path | None = None) -> dict[str, Any]:
    """(a) the in-process limit, (b) edgeserve (JSON and binary uploads), (c) plain Sanic and
    (d) FastAPI, at concurrency 8 (edgeserve and FastAPI at 1 too).

    For each model the servers stay up while the limit and each load are measured in
    alternating rounds, so a busy moment on the machine hits all of them alike.
    """
    started = time.monotonic()
    SOURCE["edgeserve"] = source or REPO
    phase = QUICK if quick else FULL
    paths = model_paths()
    payloads = build_payloads()
    bodies = _bodies(payloads)
    results: dict[str, Any] = {"meta": _meta("main", phase, quick), "limit": {}, "runs": []}
    results["servers"] = {}
    layouts = inprocess.layouts_for(os.cpu_count() or 1)
    for model, path in paths.items():
        specs = [
            ServerSpec(f"edgeserve-{model}", "edgeserve", model, dict(EDGESERVE_TUNED)),
            ServerSpec(f"sanic-{model}", "sanic", model),
            ServerSpec(f"fastapi-{model}", "fastapi", model),
        ]
        loads = main_loads(model)
        servers: dict[str, ServerProcess] = {}
        try:
            for spec in specs:
                servers[spec.name] = _start(spec, paths)
            sessions = inprocess.load_sessions(path, layouts)
            results["limit"][model] = {}
            for payload, data in payloads.items():
                limit_rounds: list[dict[str, dict[str, Any]]] = []
                load_rounds: dict[MainLoad, list[LoadResult]] = {}
                for index in range(phase.rounds):
                    say(f"{model} {payload}: round {index + 1} of {phase.rounds}")
                    # Odd rounds run in reverse, the limit last: no column always follows another.
                    steps: list[MainLoad | None] = [None, *loads]  # None: the in-process limit
                    for spec_load in steps if index % 2 == 0 else reversed(steps):
                        if spec_load is None:
                            limit_rounds.append(
                                inprocess.measure_layouts(
                                    sessions, data, layouts, phase.limit_seconds
                                )
                            )
                            continue
                        server = servers[spec_load.spec_name]
                        form = (
                            {"body": data, "path": BINARY_PATH, "content_type": BINARY_TYPE}
                            if spec_load.binary
                            else {"body": bodies[payload]}
                        )
                        result = load(
                            server.url,
                            concurrency=spec_load.concurrency,
                            seconds=phase.seconds,
                            warmup_seconds=phase.warmup if index == 0 else REWARM_SECONDS,
                            server_cpu=server.cpu_seconds,
                            client=CLIENT["kind"],
                            **form,
                        )
                        load_rounds.setdefault(spec_load, []).append(result)
                limit = inprocess.best(_pool_layouts(limit_rounds))
                results["limit"][model][payload] = limit
                say(f"  limit {limit['rps']:>8.1f} req/s with {limit['best_layout']}")
                for spec_load in loads:
                    pooled = LoadResult.merge(load_rounds[spec_load])
                    run = {
                        "server": spec_load.run_name,
                        "server_name": spec_load.spec_name,
                        "model": model,
                        "payload": payload,
                        "rounds": phase.rounds,
                        **pooled.summary(),
                    }
                    results["runs"].append(run)
                    say(
                        f"  {spec_load.run_name:<16} c={spec_load.concurrency:<2}"
                        f" {run['rps']:>8.1f} req/s  p50 {run['p50_ms']} p99 {run['p99_ms']} ms"
                        f"  CPU {run.get('server_cpu_ms_per_request')} ms/req"
                        f"  errors {run['errors']}"
                    )
            del sessions
            for spec in specs:
                results["servers"][spec.name] = _server_info(spec, servers[spec.name])
        finally:
            for server in servers.values():
                stop_server(server)
    results["targets"] = evaluate_targets(results)
    return _finish(results, started)


def _pool_layouts(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each layout's mean requests/s over the rounds (equal durations)."""
    pooled = {}
    for label, first in rounds[0].items():
        rps = [r[label]["rps"] for r in rounds]
        cpu = [r[label]["cpu_ms_per_request"] for r in rounds]
        pooled[label] = {
            **first,
            "rps": round(sum(rps) / len(rps), 1),
            "cpu_ms_per_request": round(sum(cpu) / len(cpu), 3),
            "rounds_rps": rps,
        }
    return pooled


@dataclass(frozen=True)
class Experiment:
    """One change: edgeserve with `before` settings against `after`, everything else equal."""

    name: str
    model: str
    before: dict[str, str]
    after: dict[str, str]
    loads: tuple[LoadSpec, ...]
    after_source: Path | None = None  # a code change: run `after` from another checkout


def _median(values: list[float | None]) -> float | None:
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    middle = len(present) // 2
    if len(present) % 2:
        return present[middle]
    return round((present[middle - 1] + present[middle]) / 2, 3)


def run_experiment(
    experiment: Experiment, bodies: dict[str, bytes], paths: dict[str, Path], phase: Phase
) -> list[dict[str, Any]]:
    """Both servers up at once; their load rounds alternate, so machine noise hits both."""
    rounds = 1 if phase is QUICK else 2 * phase.rounds
    servers: dict[str, ServerProcess] = {}
    rows: list[dict[str, Any]] = []
    try:
        for side, settings in (("before", experiment.before), ("after", experiment.after)):
            spec = ServerSpec(f"{side}-{experiment.model}", "edgeserve", experiment.model, settings)
            source = SOURCE["edgeserve"]
            if side == "after" and experiment.after_source is not None:
                source = experiment.after_source
            servers[side] = start_server(
                spec.name, edgeserve_argv(), _server_env(spec, paths), "/ready", cwd=source
            )
        for spec_load in experiment.loads:
            seen: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
            for index in range(rounds):
                # ABBA order: neither side is always the one that runs right after the other.
                order = list(servers.items())
                for side, server in order if index % 2 == 0 else reversed(order):
                    result = load(
                        server.url,
                        bodies[spec_load.payload],
                        concurrency=spec_load.concurrency,
                        seconds=phase.seconds / 2,
                        warmup_seconds=phase.warmup if index == 0 else REWARM_SECONDS,
                        server_cpu=server.cpu_seconds,
                        client=CLIENT["kind"],
                    )
                    seen[side].append(result.summary())
            row: dict[str, Any] = {
                "experiment": experiment.name,
                "model": experiment.model,
                "payload": spec_load.payload,
                "concurrency": spec_load.concurrency,
            }
            for side in ("before", "after"):
                summaries = seen[side]
                row[side] = {
                    "rps": _median([r["rps"] for r in summaries]),
                    "p50_ms": _median([r["p50_ms"] for r in summaries]),
                    "p99_ms": _median([r["p99_ms"] for r in summaries]),
                    "cpu_ms_per_request": _median(
                        [r["server_cpu_ms_per_request"] for r in summaries]
                    ),
                    "errors": sum(r["errors"] for r in summaries),
                    "rounds": summaries,
                }
            before, after = row["before"]["rps"], row["after"]["rps"]
            row["rps_change_pct"] = round((after / before - 1) * 100, 1) if before else None
            rows.append(row)
            say(
                f"  {experiment.name:<48} {spec_load.payload:<8} c={spec_load.concurrency:<3}"
                f" {before:>7.1f} -> {after:>7.1f} req/s ({row['rps_change_pct']:+.1f}%),"
                f" CPU {row['before']['cpu_ms_per_request']} -> "
                f"{row['after']['cpu_ms_per_request']} ms/req"
            )
        for side, server in servers.items():
            for row in rows:
                row[side]["peak_rss_mb"] = server.peak_rss_mb()["total"]
    finally:
        for server in servers.values():
            stop_server(server)
    return rows


def fastpath_experiments(after_source: Path | None) -> list[Experiment]:
    tuned = dict(EDGESERVE_TUNED)
    c1_c8 = (LoadSpec("png224", 1), LoadSpec("png224", 8))
    experiments = [
        Experiment(
            "INTRA_OP_THREADS 0 (= cores / workers = 2) -> 1",
            model,
            {},
            {"INTRA_OP_THREADS": "1"},
            c1_c8,
        )
        for model in ("mnv2", "tiny")
    ]
    experiments += [
        Experiment(
            f"micro-batching off -> BATCH_MAX_SIZE={size}",
            "mnv2",
            tuned,
            {**tuned, "BATCH_MAX_SIZE": size, "BATCH_MAX_WAIT_MS": "2"},
            c1_c8,
        )
        for size in ("4", "8")
    ]
    experiments.append(
        Experiment(
            "LOG_LEVEL warning -> info (a JSON access line per request)",
            "tiny",
            tuned,
            {**tuned, "LOG_LEVEL": "info"},
            (LoadSpec("png224", 8),),
        )
    )
    if after_source is not None:
        experiments += code_experiments(after_source)
    return experiments


def code_experiments(after_source: Path) -> list[Experiment]:
    """This checkout against another, same settings: one code change, before -> after."""
    tuned = dict(EDGESERVE_TUNED)
    return [
        Experiment(
            f"code: this checkout -> {after_source}",
            model,
            tuned,
            tuned,
            (LoadSpec("png224", 8), LoadSpec("jpeg640", 8)),
            after_source=after_source,
        )
        for model in ("tiny", "mnv2")
    ]


def fastpath_suite(quick: bool, after_source: Path | None = None) -> dict[str, Any]:
    """Each fast-path option as a before/after pair, measured in alternating rounds."""
    started = time.monotonic()
    results = experiments_results("fastpath", fastpath_experiments(after_source), quick)
    results["decode"] = decode_breakdown(quick)
    results["executor"] = executor_sizes(quick)
    return _finish(results, started)


def change_suite(quick: bool, after_source: Path | None = None) -> dict[str, Any]:
    """Only the code experiment of `fastpath`: this checkout -> --source, alternating rounds."""
    assert after_source is not None, "benchmarks/__main__.py refuses --suite change without it"
    started = time.monotonic()
    return _finish(experiments_results("change", code_experiments(after_source), quick), started)


INT8_SPEEDUP = 1.8


def quantize_suite(quick: bool, _source: Path | None = None) -> dict[str, Any]:
    """MobileNetV2 served as fp32, then as the int8 copy `edgeserve models quantize` writes."""
    started = time.monotonic()
    fp32 = ensure_mobilenet(CACHE_DIR)
    int8 = ensure_int8(fp32, CACHE_DIR)
    tuned = dict(EDGESERVE_TUNED)
    experiment = Experiment(
        "MobileNetV2 fp32 -> int8 (models quantize, 64 calibration images)",
        "mnv2",
        tuned,
        {**tuned, "MODEL_VA_PATH": str(int8)},
        (LoadSpec("png224", 1), LoadSpec("png224", 8)),
    )
    results = experiments_results("quantize", [experiment], quick)
    results["quantize_report"] = json.loads(int8.with_suffix(".report.json").read_text())
    results["pipeline_limit"] = pipeline_limits(
        {"fp32": fp32, "int8": int8}, QUICK if quick else FULL
    )
    results["targets"] = [  # issue 24: the int8 copy serves at least 1.8x as fast, same run
        {
            "target": f"int8 / fp32 req/s, png224 c{row['concurrency']} >= {INT8_SPEEDUP:g}",
            "value": round(row["after"]["rps"] / row["before"]["rps"], 2),
            "pass": row["after"]["rps"] >= INT8_SPEEDUP * row["before"]["rps"],
        }
        for row in results["experiments"]
    ]
    return _finish(results, started)


def pipeline_limits(models: dict[str, Path], phase: Phase) -> dict[str, Any]:
    """Each model's whole pipeline in process, no HTTP (decode, preprocess, run, top-5; PNG 224,
    2 callers x intra-op 1), in alternating rounds: the most any server of it can serve."""
    layout = inprocess.Layout(2, 1)
    loaded = {name: inprocess.load_sessions(path, [layout]) for name, path in models.items()}
    png = build_payloads()["png224"]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in models}
    names = list(models)
    for index in range(2 * phase.rounds):  # ABBA: a busy spell lands on both alike
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            measured = inprocess.measure_layouts(loaded[name], png, [layout], phase.limit_seconds)
            rounds[name].append(measured[layout.label])
    medians = {
        name: {
            key: statistics.median(r[key] for r in measured)
            for key in ("rps", "cpu_ms_per_request")
        }
        for name, measured in rounds.items()
    }
    first, second = names
    return {
        "layout": layout.label,
        "models": medians,
        "ratio": round(medians[second]["rps"] / medians[first]["rps"], 2),
    }


def experiments_results(suite: str, experiments: list[Experiment], quick: bool) -> dict[str, Any]:
    """Run each before/after experiment; `before` is always this checkout."""
    SOURCE["edgeserve"] = REPO
    phase = QUICK if quick else FULL
    paths = model_paths()
    bodies = _bodies(build_payloads())
    results: dict[str, Any] = {"meta": _meta(suite, phase, quick), "experiments": []}
    for experiment in experiments:
        say(f"experiment: {experiment.name} ({experiment.model})")
        results["experiments"] += run_experiment(experiment, bodies, paths, phase)
    return results


def executor_sizes(quick: bool) -> dict[str, Any]:
    """Inference threads (the executor's size) x intra-op threads, in process, PNG 224."""
    phase = QUICK if quick else FULL
    cores = os.cpu_count() or 1
    layouts = [inprocess.Layout(n, 1) for n in (1, cores, 2 * cores)]
    layouts += [inprocess.Layout(n, cores) for n in (1, cores)]
    png = {"png224": build_payloads()["png224"]}
    return {
        model: inprocess.measure_limit(path, png, layouts, phase.limit_seconds)["png224"]
        for model, path in model_paths().items()
    }


def decode_breakdown(quick: bool) -> dict[str, Any]:
    """Per-stage milliseconds of one request, in process: where the time goes."""
    import base64

    from edgeserve.inference.model import Model
    from edgeserve.inference.preprocess import decode_base64, decode_image, draft_size, to_tensor

    repeats = 30 if quick else 150
    paths = model_paths()
    payloads = build_payloads()
    out: dict[str, Any] = {}

    def timed(fn) -> float:
        fn()
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        return round((time.perf_counter() - started) / repeats * 1000, 3)

    for model_name, path in paths.items():
        model = Model.load(path, intra_op_threads=1)
        size = model.meta.input_size
        for payload, data in payloads.items():
            text = base64.b64encode(data).decode()
            body = orjson.dumps({"image_b64": text})
            image = decode_image(data, inprocess.MAX_IMAGE_PIXELS)
            tensor = to_tensor(image, model.meta, size)
            probabilities = model.run(tensor)
            pixels = inprocess.MAX_IMAGE_PIXELS
            out[f"{model_name}/{payload}"] = {
                "json_parse": timed(partial(orjson.loads, body)),
                "base64": timed(partial(decode_base64, text)),
                "decode_draft_on": timed(
                    partial(decode_image, data, pixels, draft_size(model.meta, size))
                ),
                "decode_draft_off": timed(partial(decode_image, data, pixels, None)),
                "to_tensor": timed(partial(to_tensor, image, model.meta, size)),
                "run": timed(partial(model.run, tensor)),
                "top_k": timed(partial(model.top_k, probabilities[0], 5)),
            }
    return out


def scaling_suite(quick: bool, source: Path | None = None) -> dict[str, Any]:
    """WORKERS=1 vs 2, and latency and load shedding at concurrency 1, 8, 32 and 64."""
    started = time.monotonic()
    SOURCE["edgeserve"] = source or REPO
    phase = QUICK if quick else FULL
    paths = model_paths()
    bodies = _bodies(build_payloads())
    tuned = dict(EDGESERVE_TUNED)
    experiments = [
        Experiment(
            "WORKERS 1 -> 2 (INTRA_OP_THREADS=1)",
            model,
            {**tuned, "WORKERS": "1"},
            {**tuned, "WORKERS": "2"},
            (LoadSpec("png224", 1), LoadSpec("png224", 8)),
        )
        for model in ("mnv2", "tiny")
    ]
    experiments.append(
        Experiment(
            "MAX_INFLIGHT 64 (default) -> 16",
            "mnv2",
            {**tuned, "MAX_INFLIGHT": "64"},
            {**tuned, "MAX_INFLIGHT": "16"},
            tuple(LoadSpec("png224", c) for c in (1, 8, 32, 64)),
        )
    )
    results: dict[str, Any] = {"meta": _meta("scaling", phase, quick), "experiments": []}
    for experiment in experiments:
        say(f"experiment: {experiment.name} ({experiment.model})")
        results["experiments"] += run_experiment(experiment, bodies, paths, phase)
    return _finish(results, started)


SUITES = {
    "main": main_suite,
    "fastpath": fastpath_suite,
    "scaling": scaling_suite,
    "change": change_suite,
    "quantize": quantize_suite,
    "containment": containment_suite,
}
