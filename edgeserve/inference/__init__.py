"""Models and the classify chain: loading, metadata, preprocessing, the pipeline, the registry."""

from edgeserve.inference.metadata import ModelMeta, read_meta
from edgeserve.inference.model import Model, Prediction
from edgeserve.inference.preprocess import decode_base64, decode_image, to_tensor

__all__ = [
    "Model",
    "ModelMeta",
    "Prediction",
    "decode_base64",
    "decode_image",
    "read_meta",
    "to_tensor",
]
