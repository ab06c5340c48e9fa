"""Where the CLI writes: results to stdout, one-line failures and live displays to stderr."""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn

import typer
from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

PIPED_WIDTH = 4096
"""Columns of results written to a pipe or file: every line whole, never cut at 80."""


class ResultConsole(Console):
    """A terminal's width on a terminal; elsewhere (a pipe, a file, a CI log) PIPED_WIDTH, so a
    script reads every column, unless COLUMNS names a width."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self.is_terminal or os.environ.get("COLUMNS", "").isdigit():
            return size
        return ConsoleDimensions(PIPED_WIDTH, size.height)


# markup off: model labels, paths and server messages may hold [brackets] that must print as-is
console = ResultConsole(markup=False, highlight=False)
stderr = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

USAGE_ERROR = 2
FAILURE = 1
INTERRUPTED = 130
INCONCLUSIVE_EXIT = 3
"""admin rollout: the gates could not decide in time; B was not promoted."""


def fail(message: str, code: int = FAILURE) -> NoReturn:
    error_line(message)
    raise typer.Exit(code)


def error_line(message: str) -> None:
    """A failure that does not stop the command (one image, one instance)."""
    stderr.print(Text.assemble(("error:", "bold red"), " ", message))


def warning_line(message: str) -> None:
    """Something the user should check; the command goes on."""
    stderr.print(Text.assemble(("warning:", "bold yellow"), " ", message))


def emit_json(record: Any) -> None:
    """One JSON document on one stdout line, for scripts."""
    typer.echo(json.dumps(record, sort_keys=False))


def progress(*, transient: bool = True) -> Progress:
    """A progress display on stderr; silent when stderr is not a terminal (pipes, CI logs)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=transient,
        disable=not stderr.is_terminal,
    )
