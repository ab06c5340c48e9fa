"""Figures per model version: feedback is credited to the version that answered, even after a
swap, and the model_version series stay bounded to the versions in A and B and the previous A."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import onnx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgeserve.traffic.feedback import issue
from tests.cli.helpers import admin_args
from tests.support.images import image_b64
from tests.support.server import REPO, Server, running_server
from tests.support.waiting import wait_until

SECRET = "version-accounting-secret-0123456789abcdef"
RED = {"image_b64": image_b64((255, 0, 0)), "top_k": 2}
TOKENS_PER_VARIANT = 50
CORRECT = {"A": 30, "B": 40}
"""Of each variant's 50 pre-swap tokens, how many are answered with the top-1 label."""


VERSION_LABELS = ("model_version", "a_version", "b_version")
"""The labels holding a model version: one on the variant metrics, A's and B's on shadow's."""


def versions_per_metric(server: Server) -> dict[str, set[tuple[str, ...]]]:
    """Sample name -> the versions /metrics shows for it: a model_version, or a shadow pair."""
    with server.client() as client:
        text = client.get("/metrics").text
    seen: dict[str, set[tuple[str, ...]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            versions = tuple(labels[name] for name in VERSION_LABELS if name in labels)
            if versions:
                seen.setdefault(sample.name, set()).add(versions)
    return seen


def tokens_from_both_variants(server: Server) -> list[dict]:
    """50 answers of A and 50 of B: variant, version, token and the top two labels."""
    answers: dict[str, list[dict]] = {"A": [], "B": []}
    with server.client() as client:
        while min(len(kept) for kept in answers.values()) < TOKENS_PER_VARIANT:
            body = client.post("/v1/infer", json=RED).json()
            answers[body["variant"]].append(body)
    return [answer for kept in answers.values() for answer in kept[:TOKENS_PER_VARIANT]]


def feedback_for(answers: list[dict]) -> tuple[list[tuple[dict, str]], Counter]:
    """The label to send with each answer's token, and the counts each version should get."""
    sent, expected = [], Counter()
    given = Counter()
    for answer in answers:
        variant, version = answer["variant"], answer["model"]["version"]
        top1, second = (p["label"] for p in answer["predictions"])
        correct = given[variant] < CORRECT[variant]
        given[variant] += 1
        sent.append((answer, top1 if correct else second))
        expected[(variant, version, "correct" if correct else "wrong")] += 1
    return sent, expected


def metrics_feedback(server: Server) -> Counter:
    with server.client() as client:
        text = client.get("/metrics").text
    return Counter(
        {
            (s.labels["variant"], s.labels["model_version"], s.labels["outcome"]): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "edgeserve_feedback_total"
        }
    )


def test_feedback_from_before_a_promote_is_credited_to_the_version_that_answered(run):
    settings = {"FEEDBACK_SECRET": SECRET, "AB_WEIGHT_B": "1", "STICKY_COOKIE": "false"}
    with running_server(**settings) as server:
        answers = tokens_from_both_variants(server)
        versions = {a["variant"]: a["model"]["version"] for a in answers}
        assert versions["A"] != versions["B"], versions
        with server.admin() as admin:
            assert admin.post("/admin/promote").status_code == 200
        sent, expected = feedback_for(answers)
        with server.client() as client:
            for answer, label in sent:
                r = client.post(
                    "/v1/feedback",
                    json={"feedback_token": answer["feedback_token"], "label": label},
                )
                assert r.status_code == 202, r.text
                assert r.json()["version"] == answer["model"]["version"], r.text

        assert metrics_feedback(server) == expected
        with server.admin() as admin:
            config = admin.get("/admin/config").json()
        assert config["models"]["A"]["version"] == versions["B"], config["models"]
        shown = Counter(
            {
                (row["variant"], row["version"], outcome): row[outcome]
                for row in config["feedback"]
                for outcome in ("correct", "wrong")
            }
        )
        assert shown == expected, config["feedback"]
        status = run("status", "--once", *admin_args(server.url))
        assert status.exit_code == 0, status.output
        assert f"accuracy A {versions['A']} 60.0%" in status.stdout, status.stdout
        assert f"accuracy B {versions['B']} 80.0%" in status.stdout, status.stdout


def test_status_has_a_row_per_slot_and_version_after_a_promote(run):
    with running_server(AB_WEIGHT_B="1", STICKY_COOKIE="false") as server:
        with server.client() as client:
            served = {client.post("/v1/infer", json=RED).json()["model"]["name"] for _ in range(40)}
        assert served == {"vA", "vB"}, served
        with server.admin() as admin:
            models = admin.get("/admin/config").json()["models"]
            assert admin.post("/admin/promote").status_code == 200
        status = run("status", "--once", *admin_args(server.url))
    assert status.exit_code == 0, status.output
    rows = [line for line in status.stdout.splitlines() if line.startswith(("│ A", "│ B"))]
    a, b = models["A"]["version"], models["B"]["version"]
    assert [[cell.strip() for cell in row.split("│")[1:3]] for row in rows] == [
        ["A", f"vB {b}"],
        ["A", f"vA {a} (earlier)"],
        ["B", "(none)"],  # promote empties B
        ["B", f"vB {b} (earlier)"],
    ], status.stdout


def test_a_token_of_a_version_no_longer_counted_gets_the_invalid_token_error():
    with running_server(FEEDBACK_SECRET=SECRET) as server:
        token = issue(SECRET, variant="B", version="0" * 12, label="red", now=time.time(), ttl=60)
        with server.client() as client:
            r = client.post("/v1/feedback", json={"feedback_token": token, "label": "red"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_feedback_token", r.text
    assert "no longer counted" in r.json()["error"]["message"], r.text


@pytest.fixture
def distinct_models(tmp_path: Path) -> Path:
    """50 copies of vB that differ only in their doc string: 50 versions with A's labels."""
    folder = tmp_path / "models"
    folder.mkdir()
    model = onnx.load(REPO / "models" / "vB.onnx")
    for index in range(50):
        model.doc_string = f"copy {index}"
        onnx.save(model, folder / f"b{index}.onnx")
    (folder / "vA.onnx").write_bytes((REPO / "models" / "vA.onnx").read_bytes())
    return folder


def answer_until_b_serves(server: Server, version: str) -> None:
    """Requests until the B of `version` answers (every worker follows a load within a poll),
    then its feedback, and until B has shadowed one of A's answers, so that B has series of
    every versioned metric."""
    deadline = time.monotonic() + 20
    answered = shadowed = False
    with server.client() as client:
        while time.monotonic() < deadline and not (answered and shadowed):
            body = client.post("/v1/infer", json=RED).json()
            if body["model"]["version"] == version and not answered:
                token = {"feedback_token": body["feedback_token"], "label": "red"}
                assert client.post("/v1/feedback", json=token).status_code == 202
                answered = True
            shadowed = f'b_version="{version}"' in class_pairs(client.get("/metrics").text)
    assert answered and shadowed, f"B {version} never answered (or shadowed A)"


def class_pairs(metrics: str) -> str:
    return "\n".join(
        line for line in metrics.splitlines() if line.startswith("edgeserve_shadow_class_pairs")
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_fifty_hot_loads_keep_at_most_three_versions_or_shadow_pairs_per_metric(
    distinct_models, tmp_path, workers
):
    env = {
        "MODEL_DIR": str(distinct_models),
        "MODEL_VA_PATH": str(distinct_models / "vA.onnx"),
        "MODEL_VB_PATH": "",
        "STATE_PATH": str(tmp_path / "state" / "state.json"),
        "STICKY_COOKIE": "false",
        "FEEDBACK_SECRET": SECRET,
        "WARMUP_RUNS": "0",
        "WORKERS": workers,
        "SHADOW_ENABLED": "true",  # B compares A's answers, so the shadow series grow too
    }
    loaded = []
    with running_server(**env) as server:
        for index in range(50):
            with server.admin() as admin:
                r = admin.post("/admin/models/B", json={"path": f"b{index}.onnx"})
                assert r.status_code == 200, r.text
                admin.post("/admin/config", json={"ab_weight_b": 1})
            loaded.append(r.json()["loaded"]["version"])
            answer_until_b_serves(server, loaded[-1])
            counted = wait_until(  # the worker answering /metrics follows the load within a poll
                "/metrics to show the new B",
                lambda: versions_per_metric(server),
                lambda counted: all(
                    any(loaded[-1] in versions for versions in shown) for shown in counted.values()
                ),
                timeout=10,
            )
            assert all(len(v) <= 3 for v in counted.values()), (index, counted)
            assert "edgeserve_shadow_comparisons_total" in counted, counted
            assert "edgeserve_shadow_class_pairs_total" in counted, counted
    assert len(set(loaded)) == 50
