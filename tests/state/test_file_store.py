"""The file backend: compare-and-set on the generation, atomic replace, clear failures."""

from __future__ import annotations

import asyncio
import os

import pytest

from edgeserve.state.file_store import FileStore
from edgeserve.state.store import StoreUnavailable


def doc(generation: int) -> dict:
    return {"generation": generation, "note": "the store does not validate"}


def test_an_empty_store_reads_none_and_takes_a_first_write(tmp_path):
    store = FileStore(tmp_path / "state.json")

    async def run():
        assert await store.read() is None
        assert await store.compare_and_set(None, doc(1))
        return await store.read()

    assert asyncio.run(run()) == doc(1)


def test_a_write_with_a_stale_generation_is_refused(tmp_path):
    store = FileStore(tmp_path / "state.json")

    async def run():
        await store.compare_and_set(None, doc(1))
        assert await store.compare_and_set(1, doc(2))
        assert not await store.compare_and_set(1, doc(2))
        assert not await store.compare_and_set(None, doc(9))
        return await store.read()

    assert asyncio.run(run()) == doc(2)


def test_concurrent_writers_from_one_generation_have_one_winner(tmp_path):
    stores = [FileStore(tmp_path / "state.json") for _ in range(8)]

    async def run():
        await stores[0].compare_and_set(None, doc(1))
        return await asyncio.gather(*(s.compare_and_set(1, doc(2)) for s in stores))

    assert sorted(asyncio.run(run())) == [False] * 7 + [True]


def test_a_file_that_is_not_json_raises_value_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(ValueError):
        asyncio.run(FileStore(path).read())


def test_a_write_over_a_file_that_is_not_a_state_is_refused(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"generation": "oops"}')
    assert not asyncio.run(FileStore(path).compare_and_set(None, doc(1)))


def test_a_write_that_fails_raises_store_unavailable_and_stores_nothing(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    store = FileStore(folder / "state.json")
    asyncio.run(store.compare_and_set(None, doc(1)))
    # A real fault that stops even root: the state's folder path now names a file.
    os.rename(folder, tmp_path / "moved")
    folder.write_text("not a folder")
    with pytest.raises(StoreUnavailable) as caught:
        asyncio.run(store.compare_and_set(1, doc(2)))
    assert "state file" in str(caught.value) and "\n" not in str(caught.value)
    assert not list(tmp_path.glob("moved/.state.json.*.tmp"))


def test_stale_temp_files_of_a_crashed_writer_are_removed(tmp_path):
    stale = tmp_path / ".state.json.12345.tmp"
    stale.write_text("{half")
    other = tmp_path / ".other.json.12345.tmp"
    other.write_text("{}")
    removed = FileStore(tmp_path / "state.json").clean_stale_temp_files()
    assert removed == [stale] and not stale.exists() and other.exists()


def test_an_invalid_file_is_moved_aside(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("[]")
    aside = asyncio.run(FileStore(path).discard_invalid())
    assert not path.exists() and aside.read_text() == "[]"
    assert aside.name.startswith("state.json.corrupt-")


def test_wait_for_change_returns_soon_after_a_replace(tmp_path):
    store = FileStore(tmp_path / "state.json")
    writer = FileStore(tmp_path / "state.json")

    async def run() -> float:
        await writer.compare_and_set(None, doc(1))
        await store.read()
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = asyncio.create_task(store.wait_for_change(10))
        await asyncio.sleep(0)  # one turn of the loop: the store looks once, finds no change
        await writer.compare_and_set(1, doc(2))
        await waiting
        return loop.time() - started

    assert asyncio.run(run()) < 2


def test_wait_for_change_times_out_without_a_change(tmp_path):
    store = FileStore(tmp_path / "state.json")

    async def run() -> float:
        await store.compare_and_set(None, doc(1))
        await store.read()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await store.wait_for_change(0.5)
        return loop.time() - started

    assert 0.45 < asyncio.run(run()) < 2
