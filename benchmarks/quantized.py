"""The int8 MobileNetV2: `edgeserve models quantize` run on the benchmark's fp32 model.

The command itself writes it (a subprocess, as an operator runs it), calibrated on 80
deterministic natural-looking images: 64 calibrate, 16 are held out for its agreement report.
The report is kept next to the model, so the README's figures can name the command's own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.payloads import SEED, encode, natural_image

IMAGES = 80  # --held-out 0.2 keeps 16 out: 64 calibration images, the count
HELD_OUT = "0.2"


def calibration_folder(cache_dir: Path) -> Path:
    """80 PNGs of varied sizes (the model's own center crop and resize apply to each)."""
    folder = cache_dir / f"calibration-{IMAGES}"
    if len(list(folder.glob("*.png"))) == IMAGES:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(IMAGES):
        width, height = 224 + 16 * (i % 9), 224 + 24 * (i % 5)
        image = natural_image(width, height, seed=SEED + 100 + i)
        (folder / f"img{i:03d}.png").write_bytes(encode(image, "PNG"))
    return folder


def ensure_int8(fp32: Path, cache_dir: Path) -> Path:
    """The int8 copy of `fp32` in `cache_dir`, quantized once; its report in a .report.json."""
    out = cache_dir / f"{fp32.stem}.int8.onnx"
    report = out.with_suffix(".report.json")
    if out.is_file() and report.is_file():
        return out
    argv = [
        *(sys.executable, "-m", "edgeserve", "models", "quantize", str(fp32)),
        *("--calibrate", str(calibration_folder(cache_dir)), "-o", str(out)),
        *("--held-out", HELD_OUT, "--force", "--json"),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"edgeserve models quantize failed: {done.stderr.strip()}")
    report.write_text(json.dumps(json.loads(done.stdout), indent=2) + "\n")
    return out
