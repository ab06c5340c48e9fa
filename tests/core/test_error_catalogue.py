"""One catalogue of error codes, one status each; the runbook's table says the same."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import edgeserve
from edgeserve.errors import CODES, SANIC_CODES, EdgeserveError

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = REPO / "docs" / "operations.md"
CODE_LITERAL = re.compile(r"""\bcode\s*=\s*["']([a-z0-9_]+)["']""")


def runbook_pairs() -> set[tuple[int, str]]:
    """(status, code) pairs of the runbook's error table; `a / b` rows pair up in order."""
    text = RUNBOOK.read_text()
    start = text.index("| status | code | when |")
    table = text[start : text.index("\n\n", start)].splitlines()[2:]
    pairs: set[tuple[int, str]] = set()
    for row in table:
        status_cell, code_cell = (cell.strip() for cell in row.strip("|").split("|")[:2])
        statuses = [int(s) for s in status_cell.split(" / ")]
        groups = code_cell.split(" / ") if len(statuses) > 1 else [code_cell]
        for status, group in zip(statuses, groups, strict=True):
            pairs |= {(status, code) for code in re.findall(r"`([a-z0-9_]+)`", group)}
    return pairs


def all_error_classes() -> list[type[EdgeserveError]]:
    for module in pkgutil.walk_packages(edgeserve.__path__, "edgeserve."):
        if not module.name.endswith("__main__"):  # that one runs the CLI
            importlib.import_module(module.name)
    found, todo = [], [EdgeserveError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_the_runbook_error_table_lists_exactly_the_catalogue():
    catalogue = {(status, code) for code, status in CODES.items()}
    documented = runbook_pairs()
    assert documented == catalogue, (
        f"missing from the runbook: {sorted(catalogue - documented)}; "
        f"not in the catalogue: {sorted(documented - catalogue)}"
    )


def test_every_code_the_package_raises_is_catalogued():
    used = {
        (str(path.relative_to(REPO)), code)
        for path in (REPO / "edgeserve").rglob("*.py")
        for code in CODE_LITERAL.findall(path.read_text())
    }
    unknown = sorted((where, code) for where, code in used if code not in CODES)
    assert not unknown, f"codes raised but not in edgeserve/errors.py CODES: {unknown}"


def test_every_error_class_has_its_catalogue_status():
    wrong = [
        (cls.__qualname__, cls.code, cls.status_code, CODES.get(cls.code))
        for cls in all_error_classes()
        if cls.__module__.startswith("edgeserve.") and CODES.get(cls.code) != cls("x").status_code
    ]
    assert not wrong, f"(class, code, status, catalogue status): {wrong}"


def test_a_code_keeps_its_status_whichever_class_raises_it():
    from edgeserve.errors import BadRequest
    from edgeserve.server.payload import InvalidField

    raised = {
        BadRequest("x", code="invalid_field"),
        InvalidField("x"),
        EdgeserveError("x", code="invalid_field", status_code=400),
    }
    assert {error.status_code for error in raised} == {422}


def test_sanic_statuses_map_to_codes_of_the_same_status():
    wrong = {status: code for status, code in SANIC_CODES.items() if CODES.get(code) != status}
    assert not wrong, wrong
