"""Read PromQL out of the Grafana dashboard and the recording rules (no test functions here).

The asset tests use it offline; a live test can feed `dashboard_expressions` and
`recording_rule_names` to a real Prometheus scraping a real server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# Grafana's interval variables become a fixed window, long enough for a 1s to 15s scrape.
BUILTIN_INTERVAL = "1m"
_BUILTIN_VARIABLES = {
    "__rate_interval": BUILTIN_INTERVAL,
    "__interval": BUILTIN_INTERVAL,
    "__range": BUILTIN_INTERVAL,
}

# $name, ${name} and ${name:format}; Grafana's deprecated [[name]] is not used here.
_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::[^}]*)?\}|\$(?P<plain>\w+)")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MODIFIER = re.compile(r"\boffset\s+-?\w+|@\s*[\w.()]+")
_NUMBER = re.compile(r"(?<![\w:.])(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)


def dashboard_expressions(path: str | Path) -> list[tuple[str, str]]:
    """(panel title, expr) for every query of every panel, variables already substituted."""
    dashboard = json.loads(Path(path).read_text())
    values = variable_values(dashboard)
    return [
        (panel.get("title", ""), substitute_variables(target["expr"], values))
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """The value each template variable takes when "All" (or its only choice) is selected."""
    values = dict(_BUILTIN_VARIABLES)
    for variable in dashboard.get("templating", {}).get("list", []):
        kind = variable.get("type")
        if kind == "datasource":
            value = variable.get("query", "")
        elif variable.get("includeAll"):
            value = variable.get("allValue") or ".*"
        else:
            value = str(variable.get("current", {}).get("value", variable.get("query", "")))
        values[variable["name"]] = value
    return values


def substitute_variables(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana variables in expr; an unknown variable is an error, never left behind."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        if name not in values:
            raise ValueError(f"unknown dashboard variable ${name} in: {expr}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def recording_rules(path: str | Path) -> list[tuple[str, str]]:
    """(record name, expr) for every recording rule of every group, in file order."""
    document = yaml.safe_load(Path(path).read_text())
    return [
        (rule["record"], rule["expr"])
        for group in document.get("groups", [])
        for rule in group.get("rules", [])
        if "record" in rule
    ]


def recording_rule_names(path: str | Path) -> list[str]:
    """Names of the recording rules in path, in file order."""
    return [name for name, _ in recording_rules(path)]


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, labels, keywords and numbers left out)."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _MODIFIER.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names
