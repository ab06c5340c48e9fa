"""The words of a model description: the keys read, the values each choice allows, the
defaults and limits used when a key is absent, and the names of where a value came from.

Constants only: every other description module and `inference.metadata` read them from here.
"""

from __future__ import annotations

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMG_SIZE = 224
MAX_IMG_SIZE = 4096
DEFAULT_CROP_PCT = 0.875  # torchvision's ImageNet eval: resize 256, crop 224

# The names exporters store class names under; PaddleOCR-style models use "character".
LABEL_KEYS = ("labels", "classes", "names", "character")
PREPROCESSING_KEYS = (
    "input_size",
    "resize",
    "resize_size",
    "crop_pct",
    "interpolation",
    "resize_backend",
    "pad_value",
    "color",
    "channel_order",
    "layout",
    "scale",
    "mean",
    "std",
    "output",
    "exif_transpose",
)
LEGACY_KEYS = ("img_size",)  # the first name of input_size, still read
META_KEYS = LABEL_KEYS + PREPROCESSING_KEYS + LEGACY_KEYS
LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")
OUTPUTS = ("logits", "probabilities", "sigmoid")
RESIZES = ("stretch", "center_crop", "letterbox")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
RESIZE_BACKENDS = ("pillow", "opencv")
# OpenCV has no box or hamming filter; "area" is its INTER_AREA, which Pillow lacks.
OPENCV_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "area")
COLORS = ("rgb", "grayscale")
SIDECAR, MODEL, ASSUMED = "sidecar", "model", "assumed"
