"""edgeserve models gc: remove the kept models retention lets go, on each server named."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edgeserve.cli.fleet import run_on_each
from edgeserve.cli.options import AsJson, Token, Urls
from edgeserve.cli.report import report


def _row(data: dict[str, Any]) -> list[str]:
    removed = data.get("removed") or []
    gone = ", ".join(f"{e.get('version') or 'staging'} {' '.join(e['names'])}" for e in removed)
    kept = ", ".join(f"{k['version']} ({k['why']})" for k in data.get("kept") or [])
    verb = "would remove" if data.get("dry_run") else "removed"
    removed_text = f"{verb}: {gone or 'nothing'} ({data.get('removed_bytes', 0)} bytes)"
    # Redis is the fleet's: what leaves it there (versions, unnamed chunks) shows apart.
    if shared := data.get("removed_from_redis"):
        removed_text += f"; from Redis: {', '.join(shared)}"
    return [kept or "-", removed_text]


def gc_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be removed.")
    ] = False,
    urls: Urls = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Remove kept models no slot needs: kept are A, B, the previous A and young uploads."""
    outcomes = run_on_each(urls or [], token, lambda client: client.collect_models(dry_run=dry_run))
    report("models gc", ["kept", "removed"], _row, outcomes, token=token, as_json=as_json)
