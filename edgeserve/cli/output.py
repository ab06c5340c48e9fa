"""Where the CLI writes: results to stdout, one-line failures to stderr."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console()
stderr = Console(stderr=True, highlight=False, soft_wrap=True)

USAGE_ERROR = 2
FAILURE = 1


def fail(message: str, code: int = FAILURE) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)
