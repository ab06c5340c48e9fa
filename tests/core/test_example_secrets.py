"""Secrets the docs show as examples are refused at start: anyone who read the docs knows them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgeserve.settings import SettingsError, load_settings
from tests.support.server import ADMIN_TOKEN, refused_start_lines

REPO = Path(__file__).resolve().parents[2]
MODELS = {
    "MODEL_VA_PATH": str(REPO / "models/vA.onnx"),
    "MODEL_VB_PATH": str(REPO / "models/vB.onnx"),
}
SECRETS = ("ADMIN_TOKEN", "METRICS_TOKEN", "FEEDBACK_SECRET")
# Examples the README and the runbook have shown (the README's quick start used the first).
SHOWN = ("change-me-to-a-long-secret", "change-me-to-16-chars-or-more")
# Where an operator copies settings from: the docs, the deploy files and the local stack.
DOCUMENTED = ("README.md", "compose.yml", ".env.example", "Dockerfile", "Makefile")
DOCUMENTED_DIRS = ("docs", "deploy", "local", "load", "prometheus", "grafana")
# A literal value given to a secret: `ADMIN_TOKEN=x`, `ADMIN_TOKEN: x`, `--token x`, `Bearer x`
# (8+ token characters, so `$ADMIN_TOKEN`, `<token>`, `...` and prose are not values).
VALUE = r"[\"']?([A-Za-z0-9._~+/-]{8,})"
LITERAL = re.compile(
    rf"\b(?:{'|'.join(SECRETS)})[ \t]*[=:][ \t]*{VALUE}|--token[= \t]+{VALUE}|Bearer[ \t]+{VALUE}"
)


def refusal(name: str, value: str) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, name: value})
    return str(raised.value)


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize("value", [*SHOWN, "changeme-0123456789abcdef-0123456789", "CHANGE_ME" * 4])
def test_a_documented_example_or_placeholder_secret_is_refused_in_one_line(name, value):
    message = refusal(name, value)
    assert message.startswith(f"{name} is an example value from the docs"), message
    assert "openssl rand" in message and "\n" not in message, message
    assert value not in message, message  # a secret is never echoed, even a known one


def documented_secrets() -> set[str]:
    files = [REPO / name for name in DOCUMENTED] + [
        path for folder in DOCUMENTED_DIRS for path in (REPO / folder).rglob("*")
    ]
    found = set()
    for path in files:
        if path.is_file() and path.suffix not in (".png", ".onnx"):
            for match in LITERAL.finditer(path.read_text(errors="replace")):
                found.add(next(group for group in match.groups() if group))
    return found


def test_every_secret_the_docs_show_is_refused():
    for value in documented_secrets() | set(SHOWN):
        for name in SECRETS:
            assert "example value" in refusal(name, value), (name, value)


def test_the_docs_generate_secrets_instead_of_showing_one():
    assert documented_secrets() == set(), "show $(openssl rand -hex 32), not a value"


def test_the_test_suite_tokens_are_not_examples():
    assert load_settings({**MODELS, "ADMIN_TOKEN": ADMIN_TOKEN}).admin_token == ADMIN_TOKEN


def test_serve_with_the_readme_example_token_exits_2_with_one_line():
    lines = refused_start_lines({**MODELS, "ADMIN_TOKEN": SHOWN[0]})
    assert len(lines) == 1 and "ADMIN_TOKEN is an example value" in lines[0], lines
