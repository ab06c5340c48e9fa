"""Each real preprocessing pipeline, described by a sidecar, matches an independent reference.

The references (tests/support/pipelines.py) follow torchvision, timm, Caffe and letterbox rules
with NumPy and Pillow only; edgeserve must agree with them to 1e-4 in every probability.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgeserve.inference.model import Model
from edgeserve.inference.preprocess import decode_image, to_tensor
from tests.support.pipelines import (
    PIPELINES,
    TOLERANCE,
    probabilities,
    reference_tensor,
    sample_images,
    save_probe_model,
)

CAP = 40_000_000
IMAGES = sample_images()


@pytest.fixture(scope="module")
def probe_models(tmp_path_factory) -> dict[str, Model]:
    folder = tmp_path_factory.mktemp("pipelines")
    return {
        name: Model.load(save_probe_model(folder / f"{name}.onnx", pipeline))
        for name, pipeline in PIPELINES.items()
    }


def served(model: Model, data: bytes) -> np.ndarray:
    image = decode_image(data, CAP)
    return model.run(to_tensor(image, model.meta, model.size_for(None)))[0]


@pytest.mark.parametrize("image", sorted(IMAGES))
@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_matches_its_reference_to_1e_4(probe_models, name, image):
    model, data = probe_models[name], IMAGES[image]
    want = probabilities(model.path, reference_tensor(PIPELINES[name], data))
    got = served(model, data)
    delta = float(np.abs(got - want).max())
    print(f"{name} {image}: max |dp| = {delta:.2e}")
    assert delta <= TOLERANCE, (name, image, delta, got, want)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_probe_model_notices_a_wrong_pipeline(probe_models, name):
    # The check above can fail: the old squash (or another filter) moves the scores a lot.
    model, data = probe_models[name], IMAGES["landscape.png"]
    meta = model.meta
    wrong = dataclasses.replace(
        meta,
        resize="stretch",
        interpolation="nearest" if meta.resize == "stretch" else "bilinear",
    )
    want = probabilities(model.path, reference_tensor(PIPELINES[name], data))
    image = decode_image(data, CAP)
    got = model.run(to_tensor(image, wrong, model.size_for(None)))[0]
    assert float(np.abs(got - want).max()) > 100 * TOLERANCE, (name, got, want)
