"""A rollout step's looks: bounded in number, spaced by sample growth, one kept for the deadline."""

from __future__ import annotations

import pytest

from edgeserve.cli.looks import MAX_LOOKS, ONE_SIDED_ALPHA, Looks
from edgeserve.traffic.mcnemar import FAIL, INCONCLUSIVE, PASS


class Recorder:
    """A gate's test that records each level it was run at and answers as told."""

    def __init__(self, answer: str = INCONCLUSIVE) -> None:
        self.answer = answer
        self.levels: list[float] = []
        self.fail_levels: list[float] = []

    def __call__(self, alpha: float, fail_alpha: float) -> str:
        self.levels.append(alpha)
        self.fail_levels.append(fail_alpha)
        return self.answer


def test_the_first_look_comes_as_soon_as_the_gate_has_its_samples():
    test = Recorder()
    Looks().judge(100, False, test)
    assert len(test.levels) == 1


def test_the_next_look_waits_until_the_samples_have_doubled():
    looks, test = Looks(), Recorder()
    for samples in (100, 150, 199):
        looks.judge(samples, False, test)
    assert looks.spent == 1, looks
    looks.judge(200, False, test)
    assert looks.spent == 2, looks


def test_before_the_deadline_a_gate_looks_at_most_one_time_fewer_than_its_most():
    looks, test = Looks(), Recorder()
    for doubling in range(20):
        looks.judge(100 * 2**doubling, False, test)
    assert looks.spent == MAX_LOOKS - 1, looks


def test_the_deadline_always_gets_its_look_however_many_came_before():
    looks, test = Looks(), Recorder()
    for doubling in range(20):
        looks.judge(100 * 2**doubling, False, test)
    looks.judge(100 * 2**20, True, test)
    assert looks.spent == MAX_LOOKS, looks
    assert looks.describe() == f"look {MAX_LOOKS} of at most {MAX_LOOKS}"


def test_the_deadline_looks_at_half_the_level_and_the_looks_before_share_the_rest():
    looks, test = Looks(), Recorder()
    for doubling in range(MAX_LOOKS - 1):
        looks.judge(100 * 2**doubling, False, test)
    looks.judge(100 * 2**MAX_LOOKS, True, test)
    assert test.levels[-1] == pytest.approx(ONE_SIDED_ALPHA / 2), test.levels
    assert sum(test.levels) == pytest.approx(ONE_SIDED_ALPHA), test.levels


def test_the_steps_of_a_rollout_share_the_fail_level_and_each_keeps_the_pass_level():
    steps, test = 5, Recorder()
    looks = Looks(steps=steps)
    for doubling in range(MAX_LOOKS - 1):
        looks.judge(100 * 2**doubling, False, test)
    looks.judge(100 * 2**MAX_LOOKS, True, test)
    assert steps * sum(test.fail_levels) == pytest.approx(ONE_SIDED_ALPHA), test.fail_levels
    assert sum(test.levels) == pytest.approx(ONE_SIDED_ALPHA), test.levels


def test_a_single_look_gets_the_whole_level():
    test = Recorder()
    Looks(most=1).judge(100, True, test)
    assert test.levels == [ONE_SIDED_ALPHA]


@pytest.mark.parametrize("verdict", [PASS, FAIL])
def test_a_verdict_reached_holds_for_the_rest_of_the_step(verdict):
    looks, test = Looks(), Recorder(verdict)
    looks.judge(100, False, test)
    test.answer = INCONCLUSIVE
    assert looks.judge(10_000, True, test) == verdict
    assert len(test.levels) == 1, test.levels


def test_between_looks_the_last_looks_verdict_stands():
    looks = Looks()
    looks.judge(100, False, Recorder(INCONCLUSIVE))
    assert looks.judge(150, False, Recorder(FAIL)) == INCONCLUSIVE
