"""Usage errors as one line on stderr (exit 2), like every other failure of the CLI."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import typer

from edgeserve.cli.helpstyle import Group
from edgeserve.cli.output import USAGE_ERROR, error_line
from edgeserve.errors import one_line


class OneLineErrors(Group):
    """The root group: Click's boxed usage errors become `error: ... (see '... --help')`."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as error:  # Click's UsageError, BadParameter, ...
            if type(error).__name__ == "NoArgsIsHelpError":
                _exit(USAGE_ERROR)  # the help text is already printed
            ctx = getattr(error, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _say(f"{error.format_message()}{hint}")
            _exit(error.exit_code)
        except typer.Abort:
            _say("aborted")
            _exit(1)
        _exit(code if isinstance(code, int) else 0)


def _say(message: str) -> None:
    error_line(one_line(message, limit=None))


def _exit(code: int) -> NoReturn:
    sys.exit(code)
