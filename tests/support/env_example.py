"""The lines .env.example must hold: each Settings variable with its default and meaning."""

from __future__ import annotations

import ast
import inspect
import itertools
from dataclasses import fields

from edgeserve.settings import Settings, env_name


def env_example_lines() -> list[str]:
    """A `# meaning` line, then `NAME=default`, for every variable in declaration order."""
    lines: list[str] = []
    docs = _field_docs()
    for field in fields(Settings):
        default = field.default  # not an instance's value: MODEL_DIR's empty default means more
        if isinstance(default, bool):
            shown = "true" if default else "false"
        elif default is None:
            shown = ""
        elif isinstance(default, tuple):
            shown = ",".join(default)
        else:
            shown = str(default)
        lines.append(f"# {docs.get(field.name, '')}")
        lines.append(f"{env_name(field.name)}={shown}")
    return lines


def _field_docs() -> dict[str, str]:
    """The docstring under each Settings field, read from the source (one line each)."""
    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
        ):
            docs[node.target.id] = str(following.value.value).strip()
    return docs
