"""Targets, ratios and the written results: one JSON file and one markdown table per suite."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MODEL_NAMES = {"mnv2": "MobileNetV2", "tiny": "tiny demo (vA)"}
PAYLOAD_NAMES = {"png224": "PNG 224x224", "jpeg640": "JPEG 640x480"}
# Issue 14's table: its rows in its order, at concurrency 8.
ISSUE_ROWS = (
    ("tiny", "png224", "edgeserve"),
    ("tiny", "jpeg640", "edgeserve"),
    ("mnv2", "png224", "edgeserve"),
    ("mnv2", "jpeg640", "edgeserve"),
    ("tiny", "png224", "edgeserve_binary"),
    ("tiny", "jpeg640", "edgeserve_binary"),
    ("mnv2", "png224", "edgeserve_binary"),
    ("mnv2", "jpeg640", "edgeserve_binary"),
)


def find_run(runs: Iterable[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    """The first run whose fields equal every given value."""
    for run in runs:
        if all(run.get(key) == value for key, value in match.items()):
            return run
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 3)


def comparison_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model, payload and concurrency: limit, edgeserve, FastAPI and the ratios."""
    rows = []
    runs = results["runs"]
    for run in runs:
        if run["server"] != "edgeserve":
            continue
        model, payload, concurrency = run["model"], run["payload"], run["concurrency"]
        limit = results["limit"].get(model, {}).get(payload, {})
        baseline = find_run(
            runs, server="fastapi", model=model, payload=payload, concurrency=concurrency
        )
        # The load generator runs on the same cores: the share it used was not the server's.
        cores = results["meta"].get("cores") or 1
        client_cores = run.get("client_cpu_seconds", 0.0) / run["seconds"] if run["seconds"] else 0
        limit_left = (
            limit["rps"] * max(0.0, cores - client_cores) / cores if limit.get("rps") else None
        )
        rows.append(
            {
                "model": model,
                "payload": payload,
                "concurrency": concurrency,
                "limit_rps": limit.get("rps"),
                "limit_layout": limit.get("best_layout"),
                "edgeserve": run,
                "fastapi": baseline,
                "edgeserve_over_limit": _ratio(run["rps"], limit.get("rps")),
                "edgeserve_over_fastapi": _ratio(run["rps"], baseline and baseline["rps"]),
                "client_cores": round(client_cores, 2),
                "limit_cpu_ms": limit.get("cpu_ms_per_request"),
                "edgeserve_over_limit_left": _ratio(run["rps"], limit_left),
            }
        )
    return rows


def issue_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's table at concurrency 8: edgeserve, plain Sanic, FastAPI and the limit.

    The baselines always get JSON bodies; edgeserve's binary-upload rows compare its binary
    form with them (the issue's ">= 2 x FastAPI's JSON rate")."""
    runs = results["runs"]
    rows = []
    for model, payload, server in ISSUE_ROWS:
        edgeserve = find_run(runs, server=server, model=model, payload=payload, concurrency=8)
        if edgeserve is None:
            continue
        sanic, fastapi = (
            find_run(runs, server=kind, model=model, payload=payload, concurrency=8)
            for kind in ("sanic", "fastapi")
        )
        limit = results["limit"].get(model, {}).get(payload, {}).get("rps")
        rows.append(
            {
                "model": model,
                "payload": payload,
                "binary": server == "edgeserve_binary",
                "edgeserve": edgeserve,
                "sanic": sanic,
                "fastapi": fastapi,
                "limit_rps": limit,
                "edgeserve_over_limit": _ratio(edgeserve["rps"], limit),
                "edgeserve_over_sanic": _ratio(edgeserve["rps"], sanic and sanic["rps"]),
                "edgeserve_over_fastapi": _ratio(edgeserve["rps"], fastapi and fastapi["rps"]),
            }
        )
    return rows


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's targets for this 2-core machine, each with its measured value and verdict."""
    runs = results["runs"]
    rows = {(r["model"], r["payload"], r["binary"]): r for r in issue_rows(results)}
    targets: list[dict[str, Any]] = []

    def add(name: str, value: float | None, threshold: float, *, at_most: bool = False) -> None:
        ok = value is not None and (value <= threshold if at_most else value >= threshold)
        sign = "<=" if at_most else ">="
        targets.append({"target": f"{name} {sign} {threshold:g}", "value": value, "pass": bool(ok)})

    for key, name, field, threshold in (
        (("mnv2", "png224", False), "MobileNetV2 PNG224 c8", "edgeserve_over_limit", 0.95),
        (("mnv2", "jpeg640", False), "MobileNetV2 JPEG640 c8", "edgeserve_over_limit", 0.90),
        (("tiny", "png224", False), "tiny PNG224 c8", "edgeserve_over_fastapi", 1.6),
        (("tiny", "png224", False), "tiny PNG224 c8", "edgeserve_over_sanic", 1.4),
        (("tiny", "png224", True), "tiny PNG224 c8 binary", "edgeserve_over_fastapi", 2.0),
    ):
        if key in rows:
            versus = field.removeprefix("edgeserve_over_").replace("fastapi", "FastAPI (JSON)")
            add(f"{name}: edgeserve / {versus}", rows[key][field], threshold)
    for run in runs:
        if run["server"] not in ("edgeserve", "edgeserve_binary") or run["concurrency"] != 8:
            continue
        form = " binary" if run["server"] == "edgeserve_binary" else ""
        where = f"{run['model']} {run['payload']}{form} c8"
        p50, p99 = run.get("p50_ms"), run.get("p99_ms")
        add(f"{where}: p99 / p50", _ratio(p99, p50), 2.0, at_most=True)
        add(f"{where}: errors", run["errors"], 0, at_most=True)
    tiny = results.get("servers", {}).get("edgeserve-tiny", {})
    if tiny.get("peak_rss_mb"):
        add(
            "edgeserve, vA + vB loaded, WORKERS=1: peak RSS MB",
            tiny["peak_rss_mb"]["total"],
            140,
            at_most=True,
        )
    if tiny.get("ready_seconds"):
        add(
            "edgeserve, vA + vB, WORKERS=1: seconds to /ready",
            tiny["ready_seconds"],
            1.5,
            at_most=True,
        )
    return targets


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _latency(run: dict[str, Any] | None) -> str:
    if not run:
        return "-"
    return f"{_num(run['p50_ms'])} / {_num(run['p95_ms'])} / {_num(run['p99_ms'])}"


def render_markdown(results: dict[str, Any]) -> str:
    """The suite's tables in GitHub markdown."""
    meta = results["meta"]
    lines = [
        f"# edgeserve benchmark: {meta['suite']}",
        "",
        f"{meta['started']} on {meta['cores']} cores ({meta['cpu']}); "
        f"load average {meta['loadavg_start']} at start, {meta['loadavg_end']} at end "
        "(a shared machine: other jobs ran alongside)."
        + (" Quick run: short phases, rough figures." if meta.get("quick") else ""),
        f"Phases: {meta['warmup_seconds']} s warm-up, then {meta['seconds']} s measured"
        + (f", {meta['rounds']} alternating rounds" if meta.get("rounds", 1) > 1 else "")
        + f"; closed-loop {meta.get('client', 'httpx')} clients on 127.0.0.1"
        + (f"; edgeserve from {meta['edgeserve_source']}" if meta.get("edgeserve_source") else "")
        + ".",
        "",
    ]
    if results.get("runs") and results.get("limit") and issue_rows(results):
        lines += [
            "Concurrency 8, requests/s (JSON bodies unless the row says binary upload; the "
            "baselines always get JSON); CPU ms/req is the server's CPU per request:",
            "",
            "| model, payload | edgeserve | plain Sanic | FastAPI | pipeline limit "
            "| edgeserve / limit | CPU ms/req: edgeserve, Sanic, FastAPI, limit |",
            "|---|--:|--:|--:|--:|--:|--:|",
        ]
        for row in issue_rows(results):
            es, sa, fa = row["edgeserve"], row["sanic"], row["fastapi"]
            limit = results["limit"][row["model"]][row["payload"]]
            cpu = ", ".join(
                _num(run and run.get("server_cpu_ms_per_request"), 2) for run in (es, sa, fa)
            )
            lines.append(
                f"| {MODEL_NAMES.get(row['model'], row['model'])}, "
                f"{PAYLOAD_NAMES.get(row['payload'], row['payload'])}"
                f"{', binary upload' if row['binary'] else ''} | {_num(es['rps'])} "
                f"| {_num(sa and sa['rps'])} | {_num(fa and fa['rps'])} "
                f"| {_num(row['limit_rps'])} | {_num(row['edgeserve_over_limit'], 2)} "
                f"| {cpu}, {_num(limit.get('cpu_ms_per_request'), 2)} |"
            )
        lines.append("")
    if results.get("runs") and results.get("limit"):
        lines += [
            "| model | payload | conc | limit req/s | edgeserve req/s | p50/p95/p99 ms | err "
            "| FastAPI req/s | p50/p95/p99 ms | err | edgeserve/limit | edgeserve/FastAPI "
            "| client cores | edgeserve/limit on the cores left "
            "| CPU ms/req: limit, edgeserve, FastAPI |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for row in comparison_rows(results):
            es, fa = row["edgeserve"], row["fastapi"]
            lines.append(
                f"| {MODEL_NAMES.get(row['model'], row['model'])} "
                f"| {PAYLOAD_NAMES.get(row['payload'], row['payload'])} | {row['concurrency']} "
                f"| {_num(row['limit_rps'])} | {_num(es['rps'])} | {_latency(es)} "
                f"| {es['errors']} | {_num(fa and fa['rps'])} | {_latency(fa)} "
                f"| {_num(fa and fa['errors'])} | {_num(row['edgeserve_over_limit'], 2)} "
                f"| {_num(row['edgeserve_over_fastapi'], 2)} | {_num(row['client_cores'], 2)} "
                f"| {_num(row['edgeserve_over_limit_left'], 2)} "
                f"| {_num(row['limit_cpu_ms'], 2)}, {_num(es.get('server_cpu_ms_per_request'), 2)}"
                f", {_num(fa and fa.get('server_cpu_ms_per_request'), 2)} |"
            )
        lines += [
            "",
            "The limit is the best in-process layout below. The load generator shares the "
            "machine's cores; the last column compares with the limit scaled to the cores it "
            "left (cores - client cores) / cores. CPU ms/req is CPU time (all threads) per "
            "request: in process for the limit, of the server's process group for the servers; "
            "it is far less sensitive to the other jobs on the machine than req/s.",
            "",
            "In-process limit layouts (requests/s):",
            "",
        ]
        for model, per_payload in results["limit"].items():
            for payload, entry in per_payload.items():
                shown = ", ".join(
                    f"{label}: {_num(layout['rps'])}" for label, layout in entry["layouts"].items()
                )
                lines.append(
                    f"- {MODEL_NAMES.get(model, model)}, {PAYLOAD_NAMES.get(payload, payload)}: "
                    f"{shown}; best **{entry['best_layout']}**"
                )
        lines.append("")
    if results.get("experiments"):
        lines += [
            "Each row: two servers up at once, load rounds alternating between them "
            "(medians of the rounds), so machine noise hits both sides alike.",
            "",
            "| change | model | payload | conc | req/s before -> after | change "
            "| p50 ms | p99 ms | server CPU ms/req | peak RSS MB | errors |",
            "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for row in results["experiments"]:
            b, a = row["before"], row["after"]

            def pair(key: str, b=b, a=a) -> str:
                return f"{_num(b.get(key))} -> {_num(a.get(key))}"

            change = row["rps_change_pct"]
            lines.append(
                f"| {row['experiment']} | {row['model']} | {row['payload']} "
                f"| {row['concurrency']} | {pair('rps')} "
                f"| {'-' if change is None else f'{change:+.1f}%'} | {pair('p50_ms')} "
                f"| {pair('p99_ms')} | {pair('cpu_ms_per_request')} | {pair('peak_rss_mb')} "
                f"| {_errors(b)} -> {_errors(a)} |"
            )
        lines.append("")
    if results.get("decode"):
        stages = list(next(iter(results["decode"].values())))
        lines += [
            "Per-request stages in process, ms (one thread):",
            "",
            "| model/payload | " + " | ".join(stages) + " |",
            "|---|" + "--:|" * len(stages),
        ]
        for key, timings in results["decode"].items():
            lines.append(f"| {key} | " + " | ".join(_num(timings[s], 3) for s in stages) + " |")
        lines.append("")
    if results.get("executor"):
        lines += ["Executor size (inference threads) x intra-op threads, in process, PNG 224:", ""]
        for model, entry in results["executor"].items():
            shown = ", ".join(
                f"{label}: {_num(layout['rps'])} req/s"
                for label, layout in entry["layouts"].items()
            )
            lines.append(f"- {MODEL_NAMES.get(model, model)}: {shown}")
        lines.append("")
    if results.get("servers"):
        lines += [
            "| server | settings | peak RSS MB (sum of the process group) | per process "
            "| s to ready | uvloop loaded |",
            "|---|---|--:|---|--:|---|",
        ]
        for name, server in results["servers"].items():
            rss = dict(server["peak_rss_mb"])
            total = rss.pop("total", None)
            settings = " ".join(f"{k}={v}" for k, v in server.get("settings", {}).items())
            lines.append(
                f"| {name} | {settings or '-'} | {_num(total)} "
                f"| {', '.join(_num(v) for v in rss.values())} "
                f"| {_num(server.get('ready_seconds'), 2)} "
                f"| {'yes' if server.get('uvloop') else 'no'} |"
            )
        lines += [
            "",
            "Loaded is not running: Sanic imports uvloop whenever it is installed; edgeserve "
            "runs the standard asyncio loop (USE_UVLOOP = False, for clean drains), the "
            "baselines run uvloop.",
            "",
        ]
    if results.get("containment"):
        lines += [
            "A's latency with a hazardous B kept busy (concurrency 4, A's traffic only):",
            "",
            "| server | A ok | errors | p50 ms | p99 ms | p99 / no B |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        for row in results["containment"]:
            lines.append(
                f"| {row['case']} | {row['requests_ok']} | {row['errors']} "
                f"| {_num(row['p50_ms'], 2)} | {_num(row['p99_ms'], 2)} "
                f"| {_num(row['p99_ratio'], 2)} |"
            )
        lines.append("")
    if results.get("pipeline_limit"):
        limit = results["pipeline_limit"]
        models = limit["models"]
        lines += [
            "The whole pipeline in process, no HTTP (decode, preprocess, run, top-5; PNG 224, "
            f"{limit['layout']}; medians of alternating rounds): the most a server can serve.",
            "",
            "| model | req/s | CPU ms/req |",
            "|---|--:|--:|",
            *(
                f"| {name} | {_num(m['rps'], 1)} | {_num(m['cpu_ms_per_request'], 2)} |"
                for name, m in models.items()
            ),
            f"| ratio | {_num(limit['ratio'], 2)} | |",
            "",
        ]
    if results.get("targets"):
        lines += ["| target | measured | verdict |", "|---|--:|---|"]
        for target in results["targets"]:
            verdict = "PASS" if target["pass"] else "FAIL"
            lines.append(f"| {target['target']} | {_num(target['value'], 2)} | {verdict} |")
        lines.append("")
    return "\n".join(lines)


def _errors(side: dict[str, Any]) -> str:
    """Error count, with the share of shed (503) answers when there are any."""
    rounds = side.get("rounds") or []
    total = sum(sum(r["statuses"].values()) for r in rounds)
    shed = sum(r["statuses"].get("503", 0) for r in rounds)
    if not shed or not total:
        return str(side["errors"])
    return f"{side['errors']} ({shed / total:.0%} 503)"


def write_results(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write <suite>.json and <suite>.md into out_dir (created if missing), atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    suite = results["meta"]["suite"]
    written = []
    for suffix, text in (
        ("json", json.dumps(results, indent=2, sort_keys=False) + "\n"),
        ("md", render_markdown(results)),
    ):
        target = out_dir / f"{suite}.{suffix}"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        written.append(target)
    return written[0], written[1]
