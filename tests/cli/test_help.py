"""Help pages read like a man page: no types on flags, arguments in capitals, defaults shown."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from edgeserve.cli import app


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every group and command under the root, as the words a user types."""
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():  # a group has subcommands
        paths.extend(command_paths(sub, (*path, name)))
    return paths


ALL = command_paths(typer.main.get_command(app))


@pytest.mark.parametrize("words", ALL, ids=lambda words: " ".join(words) or "edgeserve")
def test_help_shows_no_type_on_flags_and_no_braces_in_usage(run, words):
    result = run(*words, "--help")
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout, result.stdout
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage


def test_usage_names_arguments_in_capitals(run):
    assert "edgeserve infer [OPTIONS] IMAGES..." in run("infer", "--help").stdout
    assert "edgeserve admin shift [OPTIONS] PERCENT" in run("admin", "shift", "--help").stdout


def test_serve_help_names_each_variable_and_its_default(run):
    text = " ".join(run("serve", "--help").stdout.split())  # the box wraps lines
    assert "Listen address (overrides HOST). [default: (127.0.0.1)]" in text, text
    assert "Listen port (overrides PORT). [default: (8080)]" in text, text
    assert "Worker processes (overrides WORKERS). [default: (1)]" in text, text
