"""Commits and the sync loop, in-process over a real file store."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from edgeserve.errors import StateUnavailable
from edgeserve.state.file_store import FileStore
from edgeserve.state.schema import InvalidState, RuntimeState, SlotModel
from edgeserve.state.store import OutcomeUnknown, StoreUnavailable
from edgeserve.state.sync import StateSync, read_state
from tests.support.waiting import wait_until_async

SHA = "c" * 64
START = RuntimeState(
    1.0, 0.0, False, False, True, models={"A": SlotModel(f"/m/{SHA}/vA.onnx", SHA)}
)


class Worker:
    """What a worker hands the sync: its current state and the apply every change goes through."""

    def __init__(self, store: Any):
        self.state = START
        self.applied: list[RuntimeState] = []
        self.sync = StateSync(store, apply=self.apply, current=lambda: self.state)

    async def apply(self, state: RuntimeState) -> None:
        if state.generation > self.state.generation:
            self.state = state
            self.applied.append(state)


def bump_a(state: RuntimeState) -> RuntimeState:
    return state.next(ab_weight_a=state.ab_weight_a + 1)


def test_a_commit_writes_generation_plus_one_then_applies(tmp_path):
    worker = Worker(FileStore(tmp_path / "state.json"))

    async def run() -> RuntimeState | None:
        await worker.sync.store.compare_and_set(None, START.to_dict())
        await worker.sync.commit(bump_a)
        return await worker.sync.read()

    stored = asyncio.run(run())
    assert stored is not None and (stored.generation, stored.ab_weight_a) == (2, 2.0)
    assert worker.applied == [stored]


def test_concurrent_commits_from_many_workers_lose_no_change(tmp_path):
    workers = [Worker(FileStore(tmp_path / "state.json")) for _ in range(3)]

    async def run() -> RuntimeState | None:
        await workers[0].sync.store.compare_and_set(None, START.to_dict())
        await asyncio.gather(*(w.sync.commit(bump_a) for w in workers for _ in range(15)))
        return await workers[0].sync.read()

    stored = asyncio.run(run())
    assert stored is not None and (stored.generation, stored.ab_weight_a) == (46, 46.0)


def test_a_refused_change_writes_nothing(tmp_path):
    worker = Worker(FileStore(tmp_path / "state.json"))

    async def run() -> RuntimeState | None:
        await worker.sync.store.compare_and_set(None, START.to_dict())
        with pytest.raises(InvalidState):
            await worker.sync.commit(lambda s: s.next(ab_weight_a=0.0))
        return await worker.sync.read()

    assert asyncio.run(run()) == START and worker.applied == []


def test_a_commit_that_cannot_be_written_raises_503_and_applies_nothing(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    worker = Worker(FileStore(folder / "state.json"))
    asyncio.run(worker.sync.store.compare_and_set(None, START.to_dict()))
    os.rename(folder, tmp_path / "moved")
    folder.write_text("the state folder is now a file: every write fails, even as root")
    with pytest.raises(StateUnavailable) as caught:
        asyncio.run(worker.sync.commit(bump_a))
    assert caught.value.status_code == 503 and caught.value.code == "state_unavailable"
    assert worker.applied == [] and worker.state == START


def test_a_commit_over_an_invalid_stored_state_is_refused_with_503(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"models": []}')
    worker = Worker(FileStore(path))
    with pytest.raises(StateUnavailable, match="invalid"):
        asyncio.run(worker.sync.commit(bump_a))
    assert path.read_text() == '{"models": []}'


class Flaky:
    """A store whose reads fail in every way a real one might before answering."""

    kind = "redis"

    def __init__(self, answers: list[Any]):
        self.answers = answers

    async def read(self) -> Any:
        answer = self.answers.pop(0) if self.answers else GOOD
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def wait_for_change(self, timeout: float) -> None:
        await asyncio.sleep(0)

    async def compare_and_set(self, expected: int | None, document: dict) -> bool:
        return False

    async def close(self) -> None:
        return None


GOOD = START.next(generation=5, ab_weight_b=0.0, shadow_enabled=True).to_dict()


def test_the_sync_loop_survives_every_kind_of_failure_and_catches_up(monkeypatch):
    monkeypatch.setattr("edgeserve.state.sync.MIN_BACKOFF_SECONDS", 0.001)
    answers = [
        AttributeError("'list' object has no attribute 'items'"),
        StoreUnavailable("connection refused"),
        ValueError("Expecting value: line 1 column 1"),
        {"models": []},
        {**GOOD, "shadow_enabled": "false"},
        RuntimeError("anything else"),
    ]
    worker = Worker(Flaky(answers))

    async def run() -> None:
        follower = asyncio.create_task(worker.sync.follow())
        await wait_until_async(
            "the sync loop to apply a state", lambda: worker.applied, timeout=5, interval=0.01
        )
        assert not follower.done(), follower
        follower.cancel()

    asyncio.run(run())
    assert [s.generation for s in worker.applied] == [5], worker.applied
    assert worker.sync.store_up and worker.sync.last_error is None


def test_a_store_that_cannot_be_read_is_shown_as_unreachable_until_it_answers():
    worker = Worker(Flaky([StoreUnavailable("connection refused")]))
    with pytest.raises(StoreUnavailable):
        asyncio.run(worker.sync.read())
    assert worker.sync.store_label == "unreachable"
    asyncio.run(worker.sync.read())
    assert worker.sync.store_label == "redis"


# A store that lost changes, and a write whose answer was lost (issue 20)


def lineage(length: int) -> list[RuntimeState]:
    """`length` generations, each written on top of the one before, as commits make them."""
    states = [START.next(change_id="0" * 16)]
    for n in range(1, length):
        states.append(bump_a(states[-1]).written_after(states[-1], f"{n:016x}"))
    return states


class Serving(Worker):
    """A worker serving `state` that adopts whatever it is handed (as Runtime.wants decides)."""

    def __init__(self, store: Any, state: RuntimeState):
        super().__init__(store)
        self.state = state

    async def apply(self, state: RuntimeState) -> None:
        if not self.state.same_as(state) and not self.state.follows(state):
            self.state = state
            self.applied.append(state)


def test_a_commit_on_a_store_that_went_back_keeps_both_the_lost_changes_and_the_new_one(
    tmp_path,
):
    states = lineage(4)
    store = FileStore(tmp_path / "state.json")
    asyncio.run(store.compare_and_set(None, states[1].to_dict()))  # an older backup, restored
    worker = Serving(store, states[3])
    committed = asyncio.run(worker.sync.commit(lambda s: s.next(shadow_enabled=True)))
    stored = asyncio.run(worker.sync.read())
    assert stored == committed and stored.generation == states[3].generation + 1, stored
    assert (stored.ab_weight_a, stored.shadow_enabled) == (states[3].ab_weight_a, True)
    assert stored.follows(states[3]) and stored.follows(states[1])


def test_the_sync_loop_writes_back_over_what_it_descends_from_and_follows_anything_else(
    tmp_path,
):
    states = lineage(4)
    forked = bump_a(states[1]).written_after(states[1], "f" * 16)  # made on the restored store
    path = tmp_path / "state.json"

    async def one_pass(found: RuntimeState) -> tuple[RuntimeState | None, RuntimeState]:
        path.unlink(missing_ok=True)
        looker = FileStore(path)  # its own store: the worker's notices only what it did not read
        await looker.compare_and_set(None, found.to_dict())
        worker = Serving(FileStore(path), states[3])
        follower = asyncio.create_task(worker.sync.follow())
        try:
            await wait_until_async(
                "the store and the worker to agree",
                lambda: read_state(looker),
                lambda stored: stored is not None and stored.same_as(worker.state),
                timeout=5,
            )
        finally:
            follower.cancel()
        return await read_state(looker), worker.state

    behind = asyncio.run(one_pass(states[1]))
    assert behind == (states[3], states[3])  # the lost changes are put back
    elsewhere = asyncio.run(one_pass(forked))
    assert elsewhere == (forked, forked)  # a change someone made is followed, never overwritten


def test_a_generation_at_the_limit_is_the_stores_problem(tmp_path):
    at_limit = START.next(generation=2**53 - 1)
    store = FileStore(tmp_path / "state.json")
    asyncio.run(store.compare_and_set(None, at_limit.to_dict()))
    with pytest.raises(StateUnavailable, match="limit") as caught:
        asyncio.run(Serving(store, at_limit).sync.commit(bump_a))
    assert caught.value.status_code == 503


class LostAnswers:
    """A store whose write answer never comes: the write `lands` or not, then it may resolve."""

    kind = "redis"

    def __init__(self, lands: bool, resolves: bool = True):
        self.lands, self.resolves = lands, resolves
        self.document: dict[str, Any] = START.to_dict()

    async def read(self) -> Any:
        return self.document

    async def compare_and_set(self, expected: int | None, document: dict) -> bool:
        if self.lands:
            self.document = document
        raise OutcomeUnknown("redis: Timeout reading from 127.0.0.1:6379")

    async def resolve(self, change_id: str) -> bool:
        if not self.resolves:
            raise StoreUnavailable("redis: Timeout reading from 127.0.0.1:6379")
        return self.document.get("change_id") == change_id

    async def wait_for_change(self, timeout: float) -> None:
        await asyncio.sleep(timeout)

    async def close(self) -> None:
        return None


def test_a_write_whose_answer_was_lost_but_landed_is_acknowledged_and_applied():
    worker = Worker(LostAnswers(lands=True))
    committed = asyncio.run(worker.sync.commit(bump_a))
    assert worker.applied == [committed] and worker.sync.store.document == committed.to_dict()


def test_a_write_whose_answer_was_lost_and_did_not_land_says_nothing_changed():
    worker = Worker(LostAnswers(lands=False))
    with pytest.raises(StateUnavailable, match="not saved") as caught:
        asyncio.run(worker.sync.commit(bump_a))
    assert "nothing was changed" in caught.value.message and worker.applied == []


def test_a_write_that_cannot_be_read_back_never_claims_nothing_changed():
    worker = Worker(LostAnswers(lands=True, resolves=False))
    with pytest.raises(StateUnavailable, match="did not confirm") as caught:
        asyncio.run(worker.sync.commit(bump_a))
    assert "nothing was changed" not in caught.value.message and worker.applied == []
