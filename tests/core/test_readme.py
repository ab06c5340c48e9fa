"""The README's recipes: what a first-day operator copies must be safe to copy."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def section(title: str) -> str:
    """The text of the README section `## title`, up to the next `## `."""
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_the_operator_sessions_traffic_loop_stops_by_itself():
    session = section("An operator session")
    assert not re.search(r"^\s*while\b", session, re.MULTILINE), session
    assert re.search(r"^for \w+ in \$\(seq \d+\); do .*", session, re.MULTILINE), session


def test_the_readme_shows_how_to_serve_your_own_model_with_b_empty_unless_given():
    recipe = section("Serve your own model")
    assert "edgeserve serve --model-a /path/to/mymodel.onnx " in recipe, recipe
    assert "--model-b" in recipe and "leaves slot B empty" in recipe, recipe
