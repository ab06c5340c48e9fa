"""edgeserve models: inspect an ONNX classifier, start its sidecar, quantize it, rebuild the
demo models."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgeserve.cli.collect import gc_command
from edgeserve.cli.helpstyle import App
from edgeserve.cli.options import AsJson
from edgeserve.cli.output import USAGE_ERROR, console, emit_json, fail
from edgeserve.cli.signing import keygen_command, sign_command
from edgeserve.inference.description.vocabulary import PREPROCESSING_KEYS
from edgeserve.inference.version import bytes_sha256


class Preset(StrEnum):
    torchvision = "torchvision"
    timm = "timm"
    caffe = "caffe"
    paddle = "paddle"
    letterbox = "letterbox"


models_app = App(
    help="Inspect models, start their sidecar, quantize and sign them, rebuild the demo ones.",
    no_args_is_help=True,
)
models_app.command("keygen")(keygen_command)
models_app.command("sign")(sign_command)
models_app.command("gc")(gc_command)


def describe_model(path: Path) -> dict[str, Any]:
    """Everything an operator checks before serving a model; EdgeserveError if it cannot serve."""
    import onnx

    from edgeserve.inference.metadata import sidecar_path
    from edgeserve.inference.model import Model

    model = Model.load(path)
    proto = onnx.load(str(path), load_external_data=False)
    meta = model.meta
    sidecar = sidecar_path(path)
    return {
        "path": str(path),
        "name": model.name,
        "version": model.version,
        "sha256": bytes_sha256(path),
        "size_bytes": path.stat().st_size,
        "opset": {op.domain or "ai.onnx": op.version for op in proto.opset_import},
        "ir_version": proto.ir_version,
        "producer": " ".join(filter(None, (proto.producer_name, proto.producer_version))),
        "inputs": [_io(i) for i in model.session.get_inputs()],
        "outputs": [_io(o) for o in model.session.get_outputs()],
        "num_classes": model.num_classes,
        "sidecar": str(sidecar) if sidecar.is_file() else None,
        **meta.to_dict(),
        "sources": {
            key: f"from {where}" if where != "assumed" else where
            for key, where in meta.sources.items()
        },
        "warnings": [message for _event, message in model.doubts()],
    }


def _io(arg: Any) -> dict[str, Any]:
    return {"name": arg.name, "type": arg.type, "shape": list(arg.shape)}


def _shape(shape: list[Any]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _numbers(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def inspect_table(info: dict[str, Any]) -> Table:
    table = Table(title=f"{info['path']}", title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    size_kib = info["size_bytes"] / 1024
    table.add_row("name / version", f"{info['name']} {info['version']}")
    table.add_row("sha256", info["sha256"])
    table.add_row("size", f"{info['size_bytes']} bytes ({size_kib:.1f} KiB)")
    opsets = ", ".join(f"{domain} {version}" for domain, version in info["opset"].items())
    table.add_row("opset", f"{opsets} (IR {info['ir_version']})")
    table.add_row("producer", info["producer"] or "(unknown)")
    for kind in ("inputs", "outputs"):
        for arg in info[kind]:
            table.add_row(kind[:-1], f"{arg['name']} {arg['type']} {_shape(arg['shape'])}")
    table.add_row("scores", f"{info['output']} over {info['num_classes']} classes")
    table.add_row("sidecar", info["sidecar"] or "(none)")
    for key in PREPROCESSING_KEYS:
        table.add_row(key, f"{_value(info[key])}  ({info['sources'][key]})")
    table.add_row("labels", f"{', '.join(info['labels'])}  ({info['sources']['labels']})")
    for message in info["warnings"]:
        table.add_row("warning", message, style="yellow")
    return table


def _value(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], float):
        return _numbers(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return "(none)" if value is None else str(value)


@models_app.command("inspect")
def inspect(
    path: Annotated[Path, typer.Argument(help="An .onnx model file.")],
    as_json: AsJson = False,
) -> None:
    """Show a model's inputs, outputs, labels, preprocessing, opset, size and version."""
    from edgeserve.errors import EdgeserveError

    try:
        info = describe_model(path)
    except EdgeserveError as error:
        fail(error.message)
    except OSError as error:
        fail(f"cannot read model file {path}: {error.strerror or error}")
    if as_json:
        emit_json(info)
    else:
        console.print(inspect_table(info))


@models_app.command("init")
def init(
    path: Annotated[Path, typer.Argument(help="An .onnx model file.")],
    preset: Annotated[
        Preset | None, typer.Option(help="Fill in a usual pipeline's resize and normalisation.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing sidecar.")] = False,
) -> None:
    """Write a starting sidecar JSON next to a model and print what is left to decide."""
    from edgeserve.errors import EdgeserveError
    from edgeserve.inference.metadata import sidecar_path
    from edgeserve.inference.starter import starting_sidecar

    if not path.is_file():
        fail(f"model file {path} does not exist: give the path of an .onnx file", USAGE_ERROR)
    target = sidecar_path(path)
    if target.exists() and not force:
        fail(f"{target} already exists: edit it, or pass --force to replace it", USAGE_ERROR)
    try:
        sidecar, todo = starting_sidecar(path, preset.value if preset else None)
        target.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    except EdgeserveError as error:
        fail(error.message)
    except OSError as error:
        fail(f"cannot write {target} ({error.strerror or error}): check the folder")
    console.print(f"wrote {target}")
    console.print("still to decide (also listed under _todo in the file):")
    for item in todo:
        console.print(f"  - {item}")
    console.print(f"then check it with: edgeserve models inspect {path}")


@models_app.command("demo")
def demo(
    folder: Annotated[Path, typer.Argument(help="Where to write vA.onnx and vB.onnx.")] = Path(
        "models"
    ),
    as_json: AsJson = False,
) -> None:
    """Rebuild the demo colour models vA and vB (byte-for-byte reproducible)."""
    from edgeserve.inference.demo import write_demo_models
    from edgeserve.inference.model import file_version

    try:
        paths = write_demo_models(folder)
    except OSError as error:
        fail(f"cannot write the demo models to {folder} ({error.strerror or error}): check it")
    written = [{"path": str(p), "version": file_version(p)} for p in paths]
    if as_json:
        emit_json({"models": written})
        return
    table = Table(title=f"demo models in {folder}", title_justify="left")
    table.add_column("model")
    table.add_column("version")
    for entry in written:
        table.add_row(entry["path"], entry["version"])
    console.print(table)


@models_app.command("quantize")
def quantize(
    path: Annotated[Path, typer.Argument(help="The fp32 .onnx model to quantize.")],
    calibrate: Annotated[
        Path, typer.Option(help="A folder of the model's kind of PNG/JPEG images.")
    ],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="Where to write it [default: NAME.int8.onnx]."),
    ] = None,
    held_out: Annotated[
        float,
        typer.Option(min=0.01, max=0.9, help="Share of the images kept out to check agreement."),
    ] = 0.2,
    threads: Annotated[int, typer.Option(min=1, help="Threads per model while timing.")] = 1,
    seconds: Annotated[float, typer.Option(min=0.1, help="Time spent timing both.")] = 6.0,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output.")] = False,
    as_json: AsJson = False,
) -> None:
    """Write a static int8 copy of a model, calibrated on your images; compare it with fp32."""
    from edgeserve.errors import EdgeserveError
    from edgeserve.inference.comparison import compare
    from edgeserve.inference.metadata import sidecar_path
    from edgeserve.inference.model import Model
    from edgeserve.inference.quantize import model_inputs, quantize, split_images

    target = out or path.with_name(f"{path.stem}.int8.onnx")
    if target.exists() and not force:
        fail(
            f"{target} already exists: pass --force to replace it, or -o another path", USAGE_ERROR
        )
    try:
        fp32 = Model.load(path, intra_op_threads=threads)
        split = split_images(calibrate, held_out)
        quantize(fp32, model_inputs(fp32, split.calibration), target)
        int8 = Model.load(target, intra_op_threads=threads)
        result = compare(fp32, int8, model_inputs(fp32, split.held_out), seconds)
    except EdgeserveError as error:
        fail(error.message)
    except OSError as error:
        fail(f"cannot read or write a file ({error.strerror or error}): check the paths")
    sidecar = sidecar_path(target)
    files = [target, sidecar] if sidecar.is_file() else [target]
    command = (
        f"cp {' '.join(map(str, files))} $MODEL_DIR/ && "
        f"edgeserve admin load B {target.name} && edgeserve admin config set --shadow"
    )
    if as_json:
        emit_json(
            {
                "model": str(path),
                "quantized": str(target),
                "calibration_images": len(split.calibration),
                "held_out_images": result.images,
                "size_bytes": {"fp32": result.sizes[0], "int8": result.sizes[1]},
                "images_per_s": {"fp32": result.images_per_s[0], "int8": result.images_per_s[1]},
                "speedup": result.speedup,
                "top1_agreement": result.agreement,
                "max_abs_delta_p": result.max_delta,
                "load_as_b": command,
            }
        )
        return
    console.print(f"wrote {target} (int8, calibrated on {len(split.calibration)} images)")
    table = Table(title_justify="left")
    for column in ("", "fp32", "int8", "int8 / fp32"):
        table.add_column(column, justify="right" if column else "left")
    mb = [size / 1e6 for size in result.sizes]
    table.add_row("size (MB)", f"{mb[0]:.2f}", f"{mb[1]:.2f}", f"{mb[1] / mb[0]:.2f}x")
    speed = result.images_per_s
    table.add_row(
        f"images/s ({threads} thread)",
        f"{speed[0]:.1f}",
        f"{speed[1]:.1f}",
        f"{result.speedup:.2f}x",
    )
    console.print(table)
    console.print(
        f"on {result.images} held-out images: top-1 agreement {result.agreement:.1%} "
        f"({result.agreeing}/{result.images}), max |Δp| {result.max_delta:.4f}"
    )
    console.print("load it as B with shadow on:")
    console.print(command, soft_wrap=True, highlight=False)  # whole, to copy and paste
