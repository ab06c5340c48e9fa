"""The runbook's worked sidecars are the ones the pipeline tests prove exact."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.pipelines import PIPELINES
from tests.support.server import REPO

SECTION = (REPO / "docs" / "operations.md").read_text().split("## 10) Bring your own model")[1]
SIDECARS = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", SECTION, re.S)]


def test_the_runbook_shows_a_sidecar_for_every_tested_pipeline():
    assert len(SIDECARS) == len(PIPELINES), SIDECARS


@pytest.mark.parametrize("sidecar", SIDECARS, ids=lambda s: f"{s['resize']}-{s['input_size']}")
def test_each_worked_sidecar_is_a_tested_pipeline(sidecar):
    shown = {k: v for k, v in sidecar.items() if k != "labels"}
    matches = [
        name
        for name, pipeline in PIPELINES.items()
        if all(pipeline.sidecar.get(k) == v for k, v in shown.items())
    ]
    assert len(matches) == 1, (shown, matches)
