"""edgeserve admin rollout against two real instances: gates decide, a failed gate sets B to 0."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from edgeserve.cli import rollout as rollout_module
from edgeserve.cli.analysis import Gates
from edgeserve.cli.fleet import Outcome
from edgeserve.cli.rollout import parse_steps, plan_from
from tests.cli.helpers import Traffic, admin_args
from tests.support.images import ORANGE
from tests.support.models import save_colour_model, save_fails_on_real_images
from tests.support.server import REPO, Server, base_env, start_server, stop_server

FAST = ["--interval", "1", "--max-wait", "20", "--min-samples", "8"]


@contextmanager
def fleet(
    tmp_path, a, b, colour=(255, 0, 0), feedback=False, truth=None, **settings: str
) -> Iterator[list[Server]]:
    """Two instances serving models a and b (callables that write a model), with traffic
    (labelled through feedback when `feedback`: as `truth`, or right half the time). B is loaded
    through the admin API with its label change allowed: start refuses a pair whose labels
    differ."""
    a(tmp_path / "a.onnx")
    b(tmp_path / "b.onnx")
    env = base_env(
        MODEL_VA_PATH=str(tmp_path / "a.onnx"),
        MODEL_VB_PATH="",
        MODEL_DIR=str(tmp_path),
        STICKY_COOKIE="false",
        **settings,
    )
    servers = [start_server(env) for _ in range(2)]
    try:
        for server in servers:
            with server.admin() as admin:
                body = {"path": "b.onnx", "allow_label_change": True}
                loaded = admin.post("/admin/models/B", json=body)
                assert loaded.status_code == 200, loaded.text
        with ExitStack() as stack:
            for server in servers:
                stack.enter_context(Traffic(server.url, colour, feedback, truth=truth))
            yield servers
    finally:
        for server in servers:
            stop_server(server)


def demo(name: str):
    return lambda path: shutil.copy(REPO / "models" / name, path)


def configs(servers: list[Server]) -> list[dict]:
    found = []
    for server in servers:
        with server.admin() as admin:
            found.append(admin.get("/admin/config").json())
    return found


def rollout(run, servers, *args: str):
    return run("admin", "rollout", *FAST, *args, *admin_args([s.url for s in servers]))


def demo_flips(tmp_path):
    """The demo pair on orange images, shadowed: A answers yellow, B orange."""
    return fleet(tmp_path, demo("vA.onnx"), demo("vB.onnx"), colour=ORANGE, SHADOW_ENABLED="true")


def assert_stopped_with_b_at_zero(result, servers: list[Server], gate: str) -> None:
    assert result.exit_code == 1, result.output
    assert gate in result.stderr, result.stderr
    assert all(c["ab_weight_b"] == 0 for c in configs(servers))


NO_LATENCY = ["--min-latency-delta-ms", "1000"]  # B runs in its own process: not judged here


@pytest.mark.parametrize("bad", ["", "0,10", "10,5", "5,5", "5,x", "50,101"])
def test_steps_must_be_rising_percentages_in_0_to_100(bad):
    with pytest.raises(Exception, match="percentages"):
        parse_steps(bad)


def test_a_rerun_first_rejudges_where_b_stands_then_goes_on():
    assert plan_from(0, [5, 10, 25, 50, 100]) == [5, 10, 25, 50, 100]
    assert plan_from(25, [5, 10, 25, 50, 100]) == [25, 50, 100]
    assert plan_from(30, [5, 10, 25, 50, 100]) == [30, 50, 100]


def test_every_step_of_a_rollout_is_judged_at_its_share_of_the_rollouts_fail_level(monkeypatch):
    steps_told: list[int] = []
    monkeypatch.setattr(rollout_module, "run_on_each", lambda urls, *_: [Outcome(u) for u in urls])
    monkeypatch.setattr(rollout_module, "judge_step", lambda *args: steps_told.append(args[-1]))
    gates = Gates(0.01, 1.5, 5.0, None, None, 100)
    rollout_module._run([5, 25, 100], ["http://edge"], None, list, gates, 0, 0, False, False)
    assert steps_told == [3, 3, 3], steps_told


def test_dry_run_prints_the_plan_and_changes_nothing(run, tmp_path):
    with fleet(tmp_path, demo("vA.onnx"), demo("vB.onnx")) as servers:
        result = rollout(run, servers, "--dry-run", "--min-agreement", "0.9")
        assert result.exit_code == 2, result.output  # shadow is off: the gate cannot work
        result = rollout(run, servers, "--dry-run", "--steps", "10,100")
        assert result.exit_code == 0, result.output
        assert "10%" in result.stdout and "100%" in result.stdout, result.stdout
        assert "tested at most 5 times a step" in result.stdout, result.stdout
        assert "the 2 steps share each gate's 5%" in result.stdout, result.stdout
        assert all(c["ab_weight_b"] == 0 for c in configs(servers))


def test_a_good_b_reaches_100_percent_and_is_promoted(run, tmp_path):
    with fleet(tmp_path, demo("vA.onnx"), demo("vB.onnx"), SHADOW_ENABLED="true") as servers:
        result = rollout(run, servers, "--steps", "50,100", "--min-agreement", "0.9", "--promote")
        assert result.exit_code == 0, result.output
        assert "promoted" in result.stdout, result.stdout
        for config in configs(servers):
            assert config["models"]["A"]["name"] == "b", config
            assert config["ab_weight_b"] == 0


def test_a_failing_b_is_stopped_at_the_first_step_with_b_at_zero(run, tmp_path):
    with fleet(tmp_path, demo("vA.onnx"), save_fails_on_real_images) as servers:
        result = rollout(run, servers, "--steps", "20,100")
        assert result.exit_code == 1, result.output
        assert "stopped at B 20%" in result.stderr and "error rate" in result.stderr
        for config in configs(servers):
            assert config["ab_weight_b"] == 0, config
            assert "error rate" in config["last_rollback"], config


def test_a_slow_b_is_stopped_at_the_first_step_with_b_at_zero(run, tmp_path):
    a = lambda path: save_colour_model(path, work=2)  # noqa: E731
    b = lambda path: save_colour_model(path, work=10)  # noqa: E731
    with fleet(tmp_path, a, b) as servers:
        result = rollout(run, servers, "--steps", "20,100")
        assert_stopped_with_b_at_zero(result, servers, "p95 inference")


def test_a_disagreeing_b_is_held_by_min_agreement(run, tmp_path):
    with demo_flips(tmp_path) as servers:
        result = rollout(run, servers, "--steps", "20,100", "--min-agreement", "0.9")
        assert_stopped_with_b_at_zero(result, servers, "shadow agreement")


SECRET = "rollout-feedback-secret-0123456789abcdef"
UNDECIDED = ["--steps", "50", "--min-accuracy-delta", "-0.03", "--max-wait", "2", *NO_LATENCY]
"""A and B right half the time each: a few seconds of feedback cannot place B within 3 points."""


def test_an_accuracy_gate_still_inconclusive_at_max_wait_stops_with_exit_3_and_b_at_zero(
    run, tmp_path
):
    with fleet(
        tmp_path, demo("vA.onnx"), demo("vA.onnx"), feedback=True, FEEDBACK_SECRET=SECRET
    ) as servers:
        result = rollout(run, servers, *UNDECIDED, "--promote")
        assert result.exit_code == 3, result.output
        assert "inconclusive" in result.stderr and "not promoted" in result.stderr, result.stderr
        for config in configs(servers):
            assert config["ab_weight_b"] == 0 and "inconclusive" in config["last_rollback"], config
            assert config["models"]["A"]["name"] == "a", config


def test_with_hold_an_inconclusive_rollout_keeps_b_at_its_step(run, tmp_path):
    with fleet(
        tmp_path, demo("vA.onnx"), demo("vA.onnx"), feedback=True, FEEDBACK_SECRET=SECRET
    ) as servers:
        result = rollout(run, servers, *UNDECIDED, "--hold")
        assert result.exit_code == 3, result.output
        assert "B stays at 50% (--hold)" in result.stderr, result.stderr
        for config in configs(servers):
            assert config["ab_weight_b"] == config["ab_weight_a"], config


def alien_labels(path) -> None:
    """vB's bytes with labels A never answers: every shadow comparison has no common label."""
    shutil.copy(REPO / "models" / "vB.onnx", path)
    path.with_suffix(".json").write_text(json.dumps({"labels": [f"x{i}" for i in range(9)]}))


def test_a_b_that_shares_no_label_with_a_fails_the_agreement_gate(run, tmp_path):
    with fleet(tmp_path, demo("vA.onnx"), alien_labels, SHADOW_ENABLED="true") as servers:
        agreement = ["--min-agreement", "0.9", *NO_LATENCY]
        result = rollout(run, servers, "--steps", "20,100", *agreement)
        assert_stopped_with_b_at_zero(result, servers, "broken: no common label")


def test_max_class_flip_fails_a_b_that_flips_the_label_beyond_its_limit(run, tmp_path):
    with demo_flips(tmp_path) as servers:
        flip = ["--max-class-flip", "yellow=0.5", *NO_LATENCY]
        result = rollout(run, servers, "--steps", "20,100", *flip)
        assert_stopped_with_b_at_zero(result, servers, "class flips yellow")


def test_max_class_flip_needs_shadow_traffic_and_says_so(run, tmp_path):
    with fleet(tmp_path, demo("vA.onnx"), demo("vB.onnx")) as servers:
        result = rollout(run, servers, "--dry-run", "--max-class-flip", "yellow=0.5")
    assert result.exit_code == 2, result.output
    assert "--max-class-flip needs shadow traffic" in result.stderr, result.stderr


def test_max_class_flip_passes_when_its_limit_allows_the_flips(run, tmp_path):
    with demo_flips(tmp_path) as servers:
        flip = ["--max-class-flip", "yellow=1", *NO_LATENCY]
        result = rollout(run, servers, "--steps", "20", *flip)
        assert result.exit_code == 0, result.output
        assert "class flips yellow" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "bad", ["yellow", "yellow=x", "yellow=0", "yellow=1.5", "=0.1", "other=0.1"]
)
def test_a_bad_max_class_flip_is_one_line_and_exit_2(run, bad):
    result = run("admin", "rollout", "--max-class-flip", bad, "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "--help" in result.stderr, result.stderr


PAIRED = ["--steps", "50", "--interval", "3", "--min-accuracy-delta", "-0.03", *NO_LATENCY]
"""Orange images, shadowed, each answer labelled: A answers yellow, B orange."""


def paired_fleet(tmp_path, truth: str):
    return fleet(
        tmp_path,
        demo("vA.onnx"),
        demo("vB.onnx"),
        colour=ORANGE,
        feedback=True,
        truth=truth,
        SHADOW_ENABLED="true",
        FEEDBACK_SECRET=SECRET,
    )


def test_the_accuracy_gate_fails_b_on_pairs_where_only_a_was_right(run, tmp_path):
    with paired_fleet(tmp_path, truth="yellow") as servers:
        result = rollout(run, servers, *PAIRED)
        assert_stopped_with_b_at_zero(result, servers, "accuracy (paired)")
        assert "only A right" in result.stderr, result.stderr


def test_the_accuracy_gate_passes_b_on_pairs_where_only_b_was_right(run, tmp_path):
    with paired_fleet(tmp_path, truth="orange") as servers:
        result = rollout(run, servers, *PAIRED)
    assert result.exit_code == 0, result.output
    assert "accuracy (paired)" in result.stdout and "only B right" in result.stdout, result.stdout
