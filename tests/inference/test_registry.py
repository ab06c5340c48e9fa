"""The model registry: admitted once, B in a process of its own, A in this one."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

import edgeserve.inference.model
import edgeserve.state.model_store
from edgeserve.inference.model import Model, file_model_version
from edgeserve.inference.recent import RecentInputs
from edgeserve.inference.registry import ModelRegistry
from edgeserve.settings import Settings
from edgeserve.state.model_store import ModelStore
from edgeserve.state.schema import SlotModel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, tmp_path / name)
    settings = Settings(model_dir=tmp_path, warmup_runs=1)
    return ModelRegistry(settings, ModelStore(tmp_path / "kept"), RecentInputs())


def kept(registry: ModelRegistry, name: str) -> SlotModel:
    return registry.model_store.keep(registry.settings.model_dir / name)


def test_promoting_runs_b_s_admitted_model_as_a_in_this_process_without_admitting_it_again(
    registry, monkeypatch
):
    a, b = kept(registry, "vA.onnx"), kept(registry, "vB.onnx")
    admitted: list[str] = []
    admit = registry._admit

    def counting(path: Path, sha256: str, hashed: bool):
        admitted.append(path.stem)
        return admit(path, sha256, hashed)

    monkeypatch.setattr(registry, "_admit", counting)

    async def promote() -> None:
        assert await registry.follow({"A": a, "B": b}) == []
        assert await registry.follow({"A": b, "B": b}) == []

    asyncio.run(promote())
    try:
        assert admitted == ["vA", "vB"]
        assert (registry.get("A").name, registry.get("A").isolated) == ("vB", False)
        assert (registry.get("B").name, registry.get("B").isolated) == ("vB", True)
    finally:
        registry.close()


def test_a_hot_load_hashes_the_model_s_bytes_once(registry, monkeypatch):
    hashed: list[Path] = []
    real = edgeserve.inference.model.file_sha256
    expected = file_model_version(registry.settings.model_dir / "vB.onnx")

    def counting(path: Path) -> str:
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(edgeserve.inference.model, "file_sha256", counting)
    monkeypatch.setattr(edgeserve.state.model_store, "file_sha256", counting)

    async def keep_and_load() -> tuple[SlotModel, Model]:
        slot = await registry.keep_file("vB.onnx")
        return slot, await registry.load(slot, "A", hashed=True)

    slot, model = asyncio.run(keep_and_load())
    registry.close()
    assert model.sha256 == slot.version == expected
    assert len(hashed) == 1, hashed
