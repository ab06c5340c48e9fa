"""The start-up banner: models, versions, weights and the URL of the state actually served.

It is drawn from the settled start state (a stored rollout wins over the environment after a
restart), never from the environment alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from edgeserve import __version__
from edgeserve.settings import Settings
from edgeserve.variants import CANDIDATE, CURRENT


def banner(settings: Settings, state: dict[str, Any]) -> Table:
    """`state`: the start state (RuntimeState.to_dict()) every worker begins with."""
    models = state["models"]
    weights = {CURRENT: state["ab_weight_a"], CANDIDATE: state["ab_weight_b"]}
    total = sum(weights.values())
    table = Table(title=f"edgeserve {__version__} on http://{settings.host}:{settings.port}")
    table.add_column("slot")
    table.add_column("model")
    table.add_column("version")
    table.add_column("weight", justify="right")
    for slot in (CURRENT, CANDIDATE):
        model = models.get(slot)
        if model is None:
            table.add_row(slot, "(none)", "", "")
            continue
        share = f"{weights[slot] / total:.0%}" if total else ""
        table.add_row(slot, Path(model["path"]).name, model["version"][:12], share)
    table.caption = (
        f"workers={settings.workers} shadow={state['shadow_enabled']} "
        f"canary={state['canary_enabled']} sticky={state['sticky_cookie']} "
        f"generation={state['generation']} "
        f"admin={'on' if settings.admin_enabled else 'off'}"
    )
    return table
