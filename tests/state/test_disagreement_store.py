"""The disagreement store on disk: bounded in count and bytes, atomic, shared by processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

from edgeserve.inference.model import Prediction
from edgeserve.state.disagreement_store import Answer, Disagreement, DisagreementStore
from tests.support.images import ORANGE, image_bytes

A = Answer("aaaaaaaaaaaa", [Prediction(0, "red", 0.6), Prediction(3, "orange", 0.3)])
B = Answer("bbbbbbbbbbbb", [Prediction(3, "orange", 0.5), Prediction(0, "red", 0.4)])


def disagreement(image: bytes, trace_id: str = "t-1") -> Disagreement:
    return Disagreement(image=image, a=A, b=B, trace_id=trace_id, at=time.time())


def bytes_on_disk(folder: Path) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.name != ".lock")


def test_a_kept_disagreement_is_listed_and_read_back_with_its_image(tmp_path):
    store = DisagreementStore(tmp_path, max_count=10, max_bytes=1_000_000)
    image = image_bytes(ORANGE)
    capture_id = store.keep(disagreement(image, "trace-42"))
    (record,) = store.records()
    assert record["id"] == capture_id and record["trace_id"] == "trace-42", record
    assert (
        record["a"]["version"] == A.version and record["b"]["predictions"][0]["label"] == "orange"
    )
    assert store.read(capture_id) == (record, image)
    assert record["image"] == {
        "file": f"{capture_id}.png",
        "media_type": "image/png",
        "bytes": len(image),
    }


def test_the_count_bound_keeps_the_newest(tmp_path):
    store = DisagreementStore(tmp_path, max_count=3, max_bytes=1_000_000)
    kept = [store.keep(disagreement(image_bytes(ORANGE), f"t-{n}")) for n in range(7)]
    assert [r["id"] for r in store.records()] == kept[:-4:-1]
    assert len(os.listdir(tmp_path)) == 3 * 2 + 1  # image + JSON each, and the lock file


def test_the_byte_cap_holds_across_10000_disagreements(tmp_path):
    cap = 40_000
    store = DisagreementStore(tmp_path, max_count=10_000, max_bytes=cap)
    images = [image_bytes(ORANGE, size=size) for size in (8, 64, 300, 600)]
    assert max(map(len, images)) > 1000  # the cap is a few dozen captures, not thousands
    highest = 0
    for n in range(10_000):
        assert store.keep(disagreement(images[n % len(images)], f"t-{n}")) is not None
        highest = max(highest, bytes_on_disk(tmp_path))
    assert highest <= cap, highest
    # Eviction stops once the newest fits: what is left unused is less than one capture.
    assert cap - 3500 < bytes_on_disk(tmp_path), "evicted more than needed"
    assert store.records()[0]["trace_id"] == "t-9999"


def test_a_disagreement_alone_over_the_byte_cap_is_not_kept(tmp_path):
    store = DisagreementStore(tmp_path, max_count=10, max_bytes=500)
    assert store.keep(disagreement(image_bytes(ORANGE, size=300))) is None
    assert store.records() == []


def test_captures_survive_a_new_store_on_the_same_folder(tmp_path):
    first = DisagreementStore(tmp_path, max_count=2, max_bytes=1_000_000)
    kept = first.keep(disagreement(image_bytes(ORANGE)))
    again = DisagreementStore(tmp_path, max_count=2, max_bytes=1_000_000)
    assert [r["id"] for r in again.records()] == [kept]
    later = [again.keep(disagreement(image_bytes(ORANGE))) for _ in range(2)]
    assert [r["id"] for r in again.records()] == later[::-1], "the bounds count restored ones"


def test_a_crashed_writers_leftovers_are_removed_and_never_listed(tmp_path):
    store = DisagreementStore(tmp_path, max_count=10, max_bytes=1_000_000)
    orphan = tmp_path / "20260101T000000-000000-00000000.png"  # its JSON was never written
    orphan.write_bytes(image_bytes(ORANGE))
    (tmp_path / ".tmp-20260101T000000-000000-00000001.json").write_text("{")
    assert store.records() == []
    kept = store.keep(disagreement(image_bytes(ORANGE)))
    assert sorted(os.listdir(tmp_path)) == sorted([".lock", f"{kept}.json", f"{kept}.png"])


def test_files_of_no_capture_in_the_folder_are_left_alone_and_never_counted(tmp_path):
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "notes.png").write_bytes(image_bytes(ORANGE, size=600))
    store = DisagreementStore(tmp_path, max_count=1, max_bytes=1_000_000)
    kept = [store.keep(disagreement(image_bytes(ORANGE))) for _ in range(2)]
    assert [r["id"] for r in store.records()] == kept[1:]
    assert (tmp_path / "notes.json").exists() and (tmp_path / "notes.png").exists()


def test_unknown_and_malformed_ids_are_not_found(tmp_path):
    store = DisagreementStore(tmp_path, max_count=10, max_bytes=1_000_000)
    store.keep(disagreement(image_bytes(ORANGE)))
    for capture_id in ("20260101T000000-000000-00000000", "../state", "x" * 40):
        assert store.record(capture_id) is None and store.read(capture_id) is None


def write_many(folder: str, count: int) -> None:
    store = DisagreementStore(Path(folder), max_count=20, max_bytes=30_000)
    image = image_bytes(ORANGE, size=200)
    for n in range(count):
        store.keep(disagreement(image, f"{os.getpid()}-{n}"))


def test_two_processes_writing_one_folder_keep_both_bounds_and_whole_captures(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=write_many, args=(str(tmp_path), 300)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    store = DisagreementStore(tmp_path, max_count=20, max_bytes=30_000)
    records = store.records()
    assert 0 < len(records) <= 20 and bytes_on_disk(tmp_path) <= 30_000
    assert all(store.read(r["id"]) is not None for r in records)
    assert len(os.listdir(tmp_path)) == 2 * len(records) + 1


def test_a_record_naming_a_file_outside_its_capture_is_not_read(tmp_path):
    store = DisagreementStore(tmp_path / "captures", max_count=10, max_bytes=1_000_000)
    capture_id = store.keep(disagreement(image_bytes(ORANGE)))
    (tmp_path / "secret.txt").write_text("not an image")
    record_file = tmp_path / "captures" / f"{capture_id}.json"
    record = json.loads(record_file.read_text())
    record["image"]["file"] = "../secret.txt"
    record_file.write_text(json.dumps(record))
    assert store.read(capture_id) is None
