"""Commits and the sync loop, in-process over a real file store."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from edgeserve.errors import StateUnavailable
from edgeserve.state.file_store import FileStore
from edgeserve.state.schema import InvalidState, RuntimeState, SlotModel
from edgeserve.state.store import StoreUnavailable
from edgeserve.state.sync import StateSync
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
