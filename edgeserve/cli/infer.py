"""edgeserve infer: classify image files offline with a model, or with a running server (--url)."""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeserve.cli.options import normalise_url
from edgeserve.cli.output import (
    USAGE_ERROR,
    console,
    emit_json,
    error_line,
    fail,
    progress,
    warning_line,
)
from edgeserve.cli.render import predictions_table
from edgeserve.errors import EdgeserveError
from edgeserve.settings import Settings
from edgeserve.variants import CURRENT, Variant, parse_variant

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given; folders give their PNG and JPEG files, sorted, and say what they skip."""
    images: list[Path] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            found = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            if len(found) < len(files):
                skipped = len(files) - len(found)
                warning_line(
                    f"skipped {skipped} file(s) in {path} that are not .png, .jpg or .jpeg"
                )
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:  # the runbook lists a missing image file among the failures (exit 1)
            fail(f"image file {path} does not exist: check the path")
    if not images:
        fail("no PNG or JPEG files found in the given folder(s)", USAGE_ERROR)
    return images


def in_cli_words(file: Path, code: str | None, message: str) -> str:
    """The server's advice names image_b64, which a CLI user never wrote: say it about the file."""
    if code == "not_an_image":
        return f"{file} is not an image: give a PNG or JPEG file"
    return f"{file}: {message}"


def read_image(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as error:
        raise EdgeserveError(f"cannot read image file {file}: {error.strerror or error}") from None


def infer_command(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders (PNG, JPEG).")],
    variant: Annotated[
        str | None,
        typer.Option(show_default="A", help="Offline: the model of slot A (MODEL_VA_PATH) or B."),
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="Offline: model file; overrides --variant.")
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, max=1000, help="How many labels to show.")] = 5,
    img_size: Annotated[
        int | None, typer.Option(min=8, max=2048, help="Resize to this size (model default).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="Send the images to this running server instead of running offline."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per image.")] = False,
) -> None:
    """Classify images and print the top predictions, offline or via a server."""
    if url is not None:
        if variant is not None or model is not None:
            fail(
                "--variant and --model choose an offline model; with --url the server picks "
                "the variant: drop one of them",
                USAGE_ERROR,
            )
        try:
            url = normalise_url(url)
        except typer.BadParameter as error:
            fail(error.message, USAGE_ERROR)
    files = expand_images(images)
    results: list[tuple[Path, dict[str, Any] | None, str | None]] = []
    with ExitStack() as stack:
        if url is not None:
            classify = _remote(stack, url, top_k, img_size)
        else:
            slot = None if model else _slot(variant or CURRENT)
            classify = _offline(model or _slot_path(slot or CURRENT), slot, top_k, img_size)
        bar = stack.enter_context(progress())
        task = bar.add_task("classifying", total=len(files), visible=len(files) > 1)
        for file in files:
            try:
                results.append((file, classify(file), None))
            except EdgeserveError as error:
                results.append((file, None, error.message))
            bar.advance(task)
    for file, record, problem in results:
        if record is None:
            error_line(str(problem))
        elif as_json:
            emit_json({"image": str(file), **record})
        else:
            console.print(predictions_table(_title(file, record), record["predictions"]))
    if any(record is None for _, record, _ in results):
        raise typer.Exit(1)


def _title(file: Path, record: dict[str, Any]) -> str:
    model = record["model"]
    who = f"{model['name']} {model['version']}"
    if record.get("variant"):
        return f"{file}: variant {record['variant']} ({who})"
    return f"{file} ({who})"


def _remote(stack: ExitStack, url: str, top_k: int, img_size: int | None):
    from edgeserve.client import ClientError, EdgeserveClient

    client = stack.enter_context(EdgeserveClient(url))

    def classify(file: Path) -> dict[str, Any]:
        data = read_image(file)
        try:
            answer = client.infer(data, img_size=img_size, top_k=top_k)
        except ClientError as error:
            if error.unreachable:
                fail(error.message)  # every other image would fail the same way
            raise EdgeserveError(in_cli_words(file, error.code, error.message)) from None
        body = dict(answer.body)
        body["variant"] = answer.variant or body.get("variant")
        return body

    return classify


def _offline(model_path: Path, slot: str | None, top_k: int, img_size: int | None):
    from edgeserve.inference.model import Model
    from edgeserve.inference.pipeline import Decoding, classify

    try:
        classifier = Model.load(model_path)
    except EdgeserveError as error:
        fail(error.message)
    try:
        size = classifier.size_for(img_size)
    except EdgeserveError as error:
        fail(error.message.replace("img_size", "--img-size", 1), USAGE_ERROR)
    for _event, message in classifier.doubts():
        warning_line(message)
    decoding = Decoding(*_decoding_settings())

    def classify_file(file: Path) -> dict[str, Any]:
        data = read_image(file)
        try:
            predictions = classify(classifier, data, size, top_k, decoding).predictions
        except EdgeserveError as error:
            raise EdgeserveError(in_cli_words(file, error.code, error.message)) from None
        return {
            "variant": slot,
            "model": classifier.describe(),
            "predictions": [p.to_dict() for p in predictions],
        }

    return classify_file


def _settings() -> Settings:
    """The environment's settings, as the server would read them; exit 2 on a bad one."""
    from edgeserve.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as error:
        fail(str(error), USAGE_ERROR)


def _decoding_settings() -> tuple[int, bool]:
    """MAX_IMAGE_PIXELS and JPEG_DRAFT as the server reads them, and no other variable: a
    model file given on the command line needs none of the server's (MODEL_VA_PATH, ...)."""
    from edgeserve.settings import SettingsError, env_name

    wanted = ("max_image_pixels", "jpeg_draft")
    values = {name: getattr(Settings, name) for name in wanted}
    for field in fields(Settings):
        raw = os.environ.get(env_name(field.name))
        if field.name in wanted and raw is not None:
            try:
                values[field.name] = field.metadata["parse"](env_name(field.name), raw)
            except SettingsError as error:
                fail(str(error), USAGE_ERROR)
    return values["max_image_pixels"], values["jpeg_draft"]


def _slot(text: str) -> Variant:
    variant = parse_variant(text)
    if variant is None:
        fail(f"--variant {text!r} is not allowed: use A or B", USAGE_ERROR)
    return variant


def _slot_path(variant: Variant) -> Path:
    settings = _settings()
    path = settings.model_va_path if variant == CURRENT else settings.model_vb_path
    if path is None:
        fail(
            "no model B is configured (MODEL_VB_PATH is empty, or unset while MODEL_VA_PATH is "
            "set): use --model PATH",
            USAGE_ERROR,
        )
    return path
