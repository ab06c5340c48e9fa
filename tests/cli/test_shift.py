"""edgeserve admin shift: set B's share at once or in steps; stop when the canary rolls back."""

from __future__ import annotations

import json

import pytest

from edgeserve.cli.fleet import Outcome
from edgeserve.cli.shift import overridden_rollbacks, ramp_steps, rollback_reason, weights_for
from tests.cli.helpers import Traffic, admin_args
from tests.support.server import running_server


def b_share(server) -> float:
    with server.admin() as admin:
        config = admin.get("/admin/config").json()
    return config["ab_weight_b"] / (config["ab_weight_a"] + config["ab_weight_b"])


@pytest.mark.parametrize(
    ("start", "target", "step", "expected"),
    [
        (0, 50, None, [50]),
        (0, 50, 10, [10, 20, 30, 40, 50]),
        (0, 25, 10, [10, 20, 25]),
        (50, 0, 20, [30, 10, 0]),
        (40, 45, 10, [45]),
    ],
)
def test_ramp_steps_end_at_the_target_in_steps_no_larger_than_step(start, target, step, expected):
    assert ramp_steps(start, target, step) == expected


def test_weights_for_a_percentage_give_b_that_share():
    assert weights_for(25) == {"ab_weight_a": 0.75, "ab_weight_b": 0.25}
    assert weights_for(100) == {"ab_weight_a": 0.0, "ab_weight_b": 1.0}


def test_a_rollback_is_a_new_last_rollback_or_b_weight_dropping_to_zero():
    config = {"ab_weight_a": 1.0, "ab_weight_b": 0.0, "last_rollback": None}
    assert rollback_reason(config, None, 20) == "B's weight dropped to 0"
    assert rollback_reason(config, None, 0) is None
    rolled = {**config, "last_rollback": "B error rate 100.0% ..."}
    assert rollback_reason(rolled, None, 20) == "B error rate 100.0% ..."
    assert rollback_reason({**rolled, "ab_weight_b": 0.2}, rolled["last_rollback"], 20) is None


def test_shift_gives_b_the_percentage_of_traffic(run, mutable):
    result = run("admin", "shift", "30", *admin_args(mutable.url))
    assert result.exit_code == 0, result.output
    assert "70% / 30%" in result.stdout, result.stdout
    assert b_share(mutable) == pytest.approx(0.3)


def test_shift_with_step_ramps_through_each_step(run, mutable):
    args = ["--step", "10", "--interval", "0", *admin_args(mutable.url), "--json"]
    result = run("admin", "shift", "30", *args)
    assert result.exit_code == 0, result.output
    steps = [line for line in result.stderr.splitlines() if line.startswith("B at")]
    assert steps == [f"B at {p}% on 1 instance(s)" for p in (10, 20, 30)], result.stderr
    record = json.loads(result.stdout)
    assert record["reached"] == 30 and record["stopped"] is None, record
    assert b_share(mutable) == pytest.approx(0.3)


@pytest.mark.parametrize("percent", ["-1", "101", "half"])
def test_a_percentage_outside_0_to_100_is_a_usage_error(run, server, percent):
    result = run("admin", "shift", "--", percent, *admin_args(server.url))
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_shift_stops_when_the_canary_guard_rolls_back(run, model_dir):
    # A B that fails on real images must be there from the start: a hot load would refuse it.
    with running_server(
        MODEL_VA_PATH=str(model_dir / "vA.onnx"),
        MODEL_VB_PATH=str(model_dir / "broken.onnx"),
        CANARY_ENABLED="true",
        STICKY_COOKIE="false",
    ) as server:
        args = ["--step", "20", "--interval", "5", *admin_args(server.url), "--json"]
        with Traffic(server.url):
            result = run("admin", "shift", "100", *args)
        assert result.exit_code == 1, result.output
        record = json.loads(result.stdout)
        assert record["reached"] == 20 and "canary rollback" in record["stopped"], record
        assert "in a row" in record["stopped"], record
        assert "canary rollback on" in result.stderr and "the shift stopped" in result.stderr
        assert b_share(server) == 0, "the guard's rollback must stand"


def test_a_step_that_raced_a_rollback_is_found_so_b_can_go_back_to_zero():
    raced = {"ab_weight_a": 0.6, "ab_weight_b": 0.4, "last_rollback": "B error rate 50%"}
    held = {"ab_weight_a": 1.0, "ab_weight_b": 0.0, "last_rollback": "B error rate 50%"}
    quiet = {"ab_weight_a": 0.6, "ab_weight_b": 0.4, "last_rollback": "old reason"}
    outcomes = [Outcome("http://a", data=raced), Outcome("http://b", data=held)]
    outcomes.append(Outcome("http://c", data=quiet))
    baselines = {"http://a": None, "http://b": None, "http://c": "old reason"}
    assert overridden_rollbacks(outcomes, baselines) == ["http://a"]
