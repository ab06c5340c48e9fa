"""edgeserve models: inspect an ONNX classifier, rebuild the demo models."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgeserve.cli.options import AsJson
from edgeserve.cli.output import console, emit_json, fail

models_app = typer.Typer(help="Inspect models and rebuild the demo ones.", no_args_is_help=True)


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
        "sha256": _sha256(path),
        "size_bytes": path.stat().st_size,
        "opset": {op.domain or "ai.onnx": op.version for op in proto.opset_import},
        "ir_version": proto.ir_version,
        "producer": " ".join(filter(None, (proto.producer_name, proto.producer_version))),
        "inputs": [_io(i) for i in model.session.get_inputs()],
        "outputs": [_io(o) for o in model.session.get_outputs()],
        "num_classes": model.num_classes,
        "sidecar": str(sidecar) if sidecar.is_file() else None,
        **meta.to_dict(),
    }


def _io(arg: Any) -> dict[str, Any]:
    return {"name": arg.name, "type": arg.type, "shape": list(arg.shape)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    height, width = info["input_size"]
    fixed = "fixed" if info["fixed_size"] else "default"
    table.add_row(
        "layout", f"{info['layout']}, {info['channel_order']}, {height}x{width} ({fixed})"
    )
    table.add_row(
        "preprocessing",
        f"x * {info['scale']:.6g}, mean {_numbers(info['mean'])}, std {_numbers(info['std'])}",
    )
    table.add_row("scores", f"{info['output']} over {info['num_classes']} classes")
    table.add_row("labels", ", ".join(info["labels"]))
    table.add_row("sidecar", info["sidecar"] or "(none)")
    return table


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
