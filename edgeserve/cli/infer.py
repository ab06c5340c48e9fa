"""edgeserve infer: classify image files offline with a model, no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgeserve.cli.output import USAGE_ERROR, console, fail
from edgeserve.errors import EdgeserveError
from edgeserve.settings import Settings

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given; folders give their PNG and JPEG files, sorted."""
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            images.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            images.append(path)
        else:
            fail(f"image file {path} does not exist: check the path", USAGE_ERROR)
    if not images:
        fail("no PNG or JPEG files found in the given folder(s)", USAGE_ERROR)
    return images


def score_bar(score: float, width: int = 20) -> str:
    filled = round(score * width)
    return "█" * filled + "·" * (width - filled)


def infer_command(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders (PNG, JPEG).")],
    variant: Annotated[
        str, typer.Option(help="Slot whose model to use: A (MODEL_VA_PATH) or B (MODEL_VB_PATH).")
    ] = "A",
    model: Annotated[Path | None, typer.Option(help="Model file; overrides --variant.")] = None,
    top_k: Annotated[int, typer.Option(min=1, max=1000, help="How many labels to show.")] = 5,
    img_size: Annotated[
        int | None, typer.Option(min=8, max=2048, help="Resize to this size (model default).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image.")] = False,
) -> None:
    """Classify images offline and print the top predictions."""
    from edgeserve.inference.model import Model
    from edgeserve.inference.preprocess import decode_image, to_tensor

    files = expand_images(images)
    model_path = model or _slot_path(variant)
    try:
        classifier = Model.load(model_path)
    except EdgeserveError as error:
        fail(error.message)
    size = img_size or classifier.meta.fixed_size or classifier.meta.default_img_size
    if not classifier.accepts_size(size):
        fail(f"--img-size {size} is not accepted by {classifier.name}", USAGE_ERROR)
    limit = Settings().max_image_pixels
    for file in files:
        try:
            image = decode_image(file.read_bytes(), limit, target_size=size)
            probabilities = classifier.run(to_tensor(image, classifier.meta, size))
        except OSError as error:
            fail(f"cannot read image file {file}: {error.strerror or error}")
        except EdgeserveError as error:
            fail(f"{file}: {error.message}")
        predictions = classifier.top_k(probabilities[0], top_k)
        if as_json:
            record = {"image": str(file), "model": classifier.describe()}
            record["predictions"] = [p.to_dict() for p in predictions]
            typer.echo(json.dumps(record))
            continue
        table = Table(title=f"{file} ({classifier.name} {classifier.version})")
        table.add_column("label")
        table.add_column("score", justify="right")
        table.add_column("")
        for prediction in predictions:
            table.add_row(prediction.label, f"{prediction.score:.3f}", score_bar(prediction.score))
        console.print(table)


def _slot_path(variant: str) -> Path:
    from edgeserve.settings import SettingsError, load_settings

    if variant.upper() not in ("A", "B"):
        fail(f"--variant {variant!r} is not allowed: use A or B", USAGE_ERROR)
    try:
        settings = load_settings()
    except SettingsError as error:
        fail(str(error), USAGE_ERROR)
    path = settings.model_va_path if variant.upper() == "A" else settings.model_vb_path
    if path is None:
        fail("no model B is configured (MODEL_VB_PATH is empty): use --model PATH", USAGE_ERROR)
    return path
