"""Shadow comparisons are counted per pair of A's and B's versions, each outcome exported at 0
as soon as a pair is served: rate() ignores what a series held at its first scrape."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import running_server


def test_a_newly_loaded_b_has_every_comparison_outcome_exported_at_zero_for_its_pair():
    with running_server(MODEL_VB_PATH="", SHADOW_ENABLED="true", WARMUP_RUNS="0") as server:
        with server.admin() as admin:
            r = admin.post("/admin/models/B", json={"path": "vB.onnx"})
            assert r.status_code == 200, r.text
            a = admin.get("/admin/config").json()["models"]["A"]["version"]
        b = r.json()["loaded"]["version"]
        with server.client() as client:
            text = client.get("/metrics").text
    outcomes = {
        sample.labels["result"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "edgeserve_shadow_comparisons_total"
        and (sample.labels["a_version"], sample.labels["b_version"]) == (a, b)
    }
    assert outcomes == {"agree": 0, "disagree": 0, "no_common_label": 0}, text
