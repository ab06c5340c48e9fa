"""Retention's plan (issue 23): kept are A, B, the previous A, what a worker serves and young
uploads; every other version goes, and so does a staging folder a crash left behind. A version
a load holds (any process's) stays until the load ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeserve.errors import ModelLoadError
from edgeserve.state.model_store import ModelStore
from edgeserve.state.retention import (
    STALE_STAGING_SECONDS,
    Entry,
    collect,
    plan,
    reasons_to_keep,
)
from edgeserve.state.schema import RuntimeState, SlotModel
from tests.support.server import REPO

OLD = 10_000.0
GRACE = 3600.0


def version(n: int) -> str:
    return f"{n:x}" * 64


def entry(name: str, age: float = OLD) -> Entry:
    return Entry(Path("/store") / name, age, 100)


def state(**models: int) -> RuntimeState:
    slots = {
        slot: SlotModel(f"/store/{version(n)}/m.onnx", version(n)) for slot, n in models.items()
    }
    return RuntimeState(
        ab_weight_a=1.0,
        ab_weight_b=0.0,
        shadow_enabled=False,
        canary_enabled=False,
        sticky_cookie=True,
        models=slots,
    )


def removed(decided) -> list[str]:
    return [e.folder.name for e in decided.removed]


def test_the_versions_in_a_and_b_and_the_previous_a_stay_however_old():
    named = state(A=1, B=2).next(previous_a=SlotModel("/store/x/m.onnx", version(3)))
    decided = plan([entry(version(n)) for n in (1, 2, 3)], reasons_to_keep(named, []), GRACE)
    assert removed(decided) == []
    assert decided.kept == {version(1): "A", version(2): "B", version(3): "previous A"}


def test_an_old_version_no_slot_names_goes():
    decided = plan([entry(version(1)), entry(version(4))], reasons_to_keep(state(A=1), []), GRACE)
    assert removed(decided) == [version(4)]


def test_an_upload_younger_than_the_grace_period_stays():
    young = entry(version(4), age=GRACE - 1)
    decided = plan([young], reasons_to_keep(state(A=1), []), GRACE)
    assert removed(decided) == [] and decided.kept == {version(4): "young upload"}


def test_what_a_worker_serves_stays_even_if_the_state_moved_on():
    decided = plan([entry(version(5))], reasons_to_keep(state(A=1), [version(5)]), GRACE)
    assert removed(decided) == []


def test_a_staging_folder_goes_only_once_nothing_wrote_to_it_for_an_hour():
    busy = entry(".incoming-busy", age=STALE_STAGING_SECONDS - 1)
    stale = entry(".incoming-stale", age=STALE_STAGING_SECONDS + 1)
    decided = plan([busy, stale], reasons_to_keep(state(A=1), []), grace_seconds=0)
    assert removed(decided) == [".incoming-stale"]


def test_a_folder_that_is_not_the_stores_is_never_collected(tmp_path):
    (tmp_path / "lost+found").mkdir()
    (tmp_path / version(7)).mkdir()
    (tmp_path / version(7) / "m.onnx").write_bytes(b"x")
    decided = collect(tmp_path, {}, grace_seconds=0, dry_run=False)
    assert [e.folder.name for e in decided.removed] == [version(7)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lost+found"]


def kept_model(store: Path, n: int) -> SlotModel:
    folder = store / version(n)
    folder.mkdir()
    (folder / "m.onnx").write_bytes(b"x")
    return SlotModel(str(folder / "m.onnx"), version(n))


def test_a_version_a_load_holds_stays_as_loading_however_old(tmp_path):
    model = kept_model(tmp_path, 4)
    with ModelStore(tmp_path).loading(model):
        decided = collect(tmp_path, {}, grace_seconds=0, dry_run=False)
    assert removed(decided) == [] and decided.kept == {version(4): "loading"}
    assert Path(model.path).is_file()


def test_a_version_a_load_in_another_process_holds_stays_too(tmp_path):
    model = kept_model(tmp_path, 4)
    holder = (
        "import sys; from pathlib import Path\n"
        "from edgeserve.state.model_store import ModelStore\n"
        "from edgeserve.state.schema import SlotModel\n"
        "with ModelStore(Path(sys.argv[1])).loading(SlotModel(sys.argv[2], sys.argv[3])):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path), model.path, model.version],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as other_worker:
        assert other_worker.stdout.readline() == "held\n"
        decided = collect(tmp_path, {}, grace_seconds=0, dry_run=False)
        other_worker.stdin.close()
    assert decided.kept == {version(4): "loading"}, decided
    assert Path(model.path).is_file()


def test_a_version_goes_once_its_load_ended(tmp_path):
    model = kept_model(tmp_path, 4)
    with ModelStore(tmp_path).loading(model):
        pass
    decided = collect(tmp_path, {}, grace_seconds=0, dry_run=False)
    assert removed(decided) == [version(4)]
    assert not Path(model.path).exists()


def test_a_load_that_starts_after_gc_removed_its_version_is_model_missing(tmp_path):
    model = kept_model(tmp_path, 4)
    collect(tmp_path, {}, grace_seconds=0, dry_run=False)
    with pytest.raises(ModelLoadError) as caught, ModelStore(tmp_path).loading(model):
        pass
    assert caught.value.code == "model_missing", caught.value.message
