"""A state folder that cannot keep a copy of a model refuses the load (issue 20).

The state names kept copies only (`<state folder>/models/<sha256>/<file>`): a load that cannot
make one answers 507 `insufficient_storage` (no room) or 503 `state_unavailable` (not
writable) with the reason, and changes nothing. Before, it named the original file, which a
later `cp` could overwrite, and a restart then discarded the whole state as changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from edgeserve.state.schema import parse_state
from tests.support.folders import fill_up, read_only, tiny_filesystem
from tests.support.models import save_colour_model
from tests.support.server import running_server

BIG_MODEL_KIB = 40  # save_colour_model(work=1): its convolution weights alone take 37 KiB


@contextmanager
def full_after_start(folder: Path) -> Iterator[Callable[[], AbstractContextManager[None]]]:
    """The state folder on a tiny file system; the fault: filled up to 16 KiB free."""
    with tiny_filesystem(folder, size_kib=512):

        @contextmanager
        def fault() -> Iterator[None]:
            fill_up(folder, leave_kib=16)
            yield

        yield fault


@contextmanager
def read_only_after_start(folder: Path) -> Iterator[Callable[[], AbstractContextManager[None]]]:
    """The fault: the kept-copy folder `models/` cannot be written (the state file still can)."""
    yield lambda: read_only(folder / "models")


FAULTS = {
    "nearly_full": (full_after_start, 507, "insufficient_storage", "free space"),
    "models_folder_read_only": (read_only_after_start, 503, "state_unavailable", "writable"),
}


@pytest.fixture
def model_dir(model_dir: Path) -> Path:
    """The demo models, and one too big for the nearly full folder."""
    folder = model_dir
    big = save_colour_model(folder / "big.onnx", work=1)
    assert big.stat().st_size > BIG_MODEL_KIB * 1024, big.stat().st_size
    return folder


def stored(state_file: Path) -> dict[str, Any]:
    return json.loads(state_file.read_text())


@pytest.mark.parametrize("fault", FAULTS)
def test_a_load_the_state_folder_cannot_keep_is_refused_and_changes_nothing(
    tmp_path, model_dir, fault
):
    around, status, code, advice = FAULTS[fault]
    folder = tmp_path / "state"
    folder.mkdir()
    state_file = folder / "state.json"
    env = {
        "STATE_PATH": str(state_file),
        "MODEL_VA_PATH": str(model_dir / "vA.onnx"),
        "MODEL_VB_PATH": str(model_dir / "vB.onnx"),
        "WORKERS": "1",
    }
    with around(folder) as make_fault, running_server(**env) as server, server.admin() as admin:
        before, on_disk = admin.get("/admin/config").json(), stored(state_file)
        with make_fault():
            answer = admin.post("/admin/models/B", json={"path": "big.onnx"})
            after, now_on_disk = admin.get("/admin/config").json(), stored(state_file)
            # A change that needs no copy still goes through: the folder is short of room
            # (or of write access) for models only.
            weights = admin.post("/admin/config", json={"ab_weight_b": 0.25})
        final = parse_state(stored(state_file))
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and advice in error["message"], error
    assert "big.onnx" in error["message"] and "\n" not in error["message"], error
    assert (after, now_on_disk) == (before, on_disk)
    assert weights.status_code == 200, weights.text
    for slot, model in final.models.items():
        assert model.content_addressed, (slot, model)  # never the original, mutable file
