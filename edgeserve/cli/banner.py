"""The start-up banner: models, versions, weights and the URL."""

from __future__ import annotations

from rich.table import Table

from edgeserve import __version__
from edgeserve.settings import Settings
from edgeserve.variants import CANDIDATE, CURRENT


def banner(settings: Settings) -> Table:
    from edgeserve.inference.model import file_version

    total = settings.ab_weight_a + settings.ab_weight_b
    table = Table(title=f"edgeserve {__version__} on http://{settings.host}:{settings.port}")
    table.add_column("slot")
    table.add_column("model")
    table.add_column("version")
    table.add_column("weight", justify="right")
    slots = (
        (CURRENT, settings.model_va_path, settings.ab_weight_a),
        (CANDIDATE, settings.model_vb_path, settings.ab_weight_b),
    )
    for slot, path, weight in slots:
        if path is None:
            table.add_row(slot, "(none)", "", "")
            continue
        table.add_row(slot, str(path), file_version(path), f"{weight / total:.0%}")
    table.caption = (
        f"workers={settings.workers} shadow={settings.shadow_enabled} "
        f"canary={settings.canary_enabled} sticky={settings.sticky_cookie} "
        f"admin={'on' if settings.admin_enabled else 'off'}"
    )
    return table
