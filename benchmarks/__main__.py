"""Entry point of `python -m benchmarks` (see --help and benchmarks/README.md)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from benchmarks import wrk
from benchmarks.loadgen import CLIENTS
from benchmarks.report import render_markdown, write_results
from benchmarks.suites import CLIENT, SUITES, say

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure edgeserve against the in-process limit, plain Sanic and FastAPI.",
    )
    parser.add_argument("--quick", action="store_true", help="short phases (rough figures)")
    parser.add_argument(
        "--suite",
        choices=[*SUITES, "all"],
        default="main",
        help="main: the results table (default); fastpath: one change at a time; "
        "scaling: workers, concurrency and load shedding; change: this checkout against "
        "--source only (a code change, before -> after)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument(
        "--strict", action="store_true", help="exit with 1 when a target fails (default: 0)"
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="another checkout of edgeserve: main and scaling run it instead of this one; "
        "fastpath adds a before (this checkout) / after (that one) experiment",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="wrk" if wrk.available() else "raw",
        help="load generator (it shares the cores with the servers): Debian's wrk, the default "
        "when installed (about 0.1 ms of CPU per request); a bare HTTP/1.1 client, the default "
        "otherwise (about 0.25 ms); or httpx.AsyncClient (about ten times that)",
    )
    args = parser.parse_args(argv)
    CLIENT["kind"] = args.client
    if args.source is not None:
        if not (args.source / "edgeserve" / "__init__.py").is_file():
            parser.error(f"--source {args.source} has no edgeserve package: give a checkout")
        args.source = args.source.resolve()
    # Stopped by SIGTERM: unwind through the `finally` blocks that stop our servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.suite == "change" and args.source is None:
        parser.error("--suite change needs --source DIR: a checkout with the change to measure")
    everything = [name for name in SUITES if name != "change" or args.source is not None]
    names = everything if args.suite == "all" else [args.suite]
    failed = False
    for name in names:
        say(f"== suite {name}{' (quick)' if args.quick else ''}")
        results = SUITES[name](args.quick, args.source)
        json_path, md_path = write_results(results, args.out)
        print(render_markdown(results))
        say(f"wrote {json_path} and {md_path} in {results['meta']['wall_seconds']} s")
        failed = failed or any(not t["pass"] for t in results.get("targets", []))
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
