"""One catalogue of error codes, one status each; the runbook's table says the same."""

from __future__ import annotations

import importlib
import pkgutil
import re
from http import HTTPStatus
from pathlib import Path
from typing import TypeVar

import orjson
import pytest
from sanic.exceptions import SanicException

import edgeserve
from edgeserve.errors import (
    CODES,
    SANIC_CODES,
    BadRequest,
    EdgeserveError,
    InvalidField,
    Overloaded,
    one_line,
)
from edgeserve.server.errors import JsonErrorHandler
from edgeserve.server.protocol import REFUSED_ANSWER

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = REPO / "docs" / "operations.md"
CODE_LITERAL = re.compile(r"""\bcode\s*=\s*["']([a-z0-9_]+)["']""")
E = TypeVar("E", bound=BaseException)


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


def import_the_package() -> None:
    for module in pkgutil.walk_packages(edgeserve.__path__, "edgeserve."):
        if not module.name.endswith("__main__"):  # that one runs the CLI
            importlib.import_module(module.name)


def package_subclasses(base: type[E]) -> list[type[E]]:
    """The package's own classes among `base` and its subclasses (a test's are left out)."""
    import_the_package()
    found, todo = [], [base]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("edgeserve."):
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


def test_every_error_class_is_defined_in_edgeserve_errors():
    elsewhere = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in package_subclasses(EdgeserveError)
        if cls.__module__ != "edgeserve.errors"
    ]
    assert not elsewhere, f"move these to edgeserve/errors.py: {elsewhere}"


def test_every_error_class_takes_its_status_from_the_catalogue():
    # A class's own status_code would hide the catalogue's (EdgeserveError's is a property
    # reading CODES), so no class may set one, and each one's code must be catalogued.
    wrong = [
        (cls.__qualname__, cls.code, vars(cls).get("status_code"), CODES.get(cls.code))
        for cls in package_subclasses(EdgeserveError)
        if cls.code not in CODES
        or (cls is not EdgeserveError and "status_code" in vars(cls))
        or cls("x").status_code != CODES[cls.code]
    ]
    assert not wrong, f"(class, code, own status_code, catalogue status): {wrong}"


def test_a_code_keeps_its_status_whichever_class_raises_it():
    raised = {
        BadRequest("x", code="invalid_field"),
        InvalidField("x"),
        EdgeserveError("x", code="invalid_field"),
    }
    assert {error.status_code for error in raised} == {422}


def test_our_subclasses_of_sanic_errors_answer_their_catalogue_code_and_status():
    ours = package_subclasses(SanicException)
    assert ours, "edgeserve.server.protocol defines two: is the walk broken?"
    for cls in ours:
        answer = JsonErrorHandler().default(None, cls("x"))
        answered = (orjson.loads(answer.body)["error"]["code"], answer.status)
        assert answered == (cls.code, CODES[cls.code]), cls
        assert cls.status_code == CODES[cls.code], f"{cls}: Sanic's status is not the catalogue's"


def test_the_connection_cap_answer_is_what_the_handler_answers_for_overloaded():
    head, _, body = REFUSED_ANSWER.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    refused = orjson.loads(body)
    handled = JsonErrorHandler().default(None, Overloaded(refused["error"]["message"]))
    assert status_line == f"HTTP/1.1 {handled.status} {HTTPStatus(handled.status).phrase}"
    assert refused == {**orjson.loads(handled.body), "trace_id": ""}  # no request, no trace id
    assert headers["Content-Type"] == handled.content_type, headers
    assert headers["Retry-After"] == handled.headers["Retry-After"], headers
    assert (headers["Connection"], int(headers["Content-Length"])) == ("close", len(body))


@pytest.mark.parametrize(
    ("error", "limit", "expected"),
    [
        ("  a\n\tb \u2028 c  ", None, "a b c"),
        (ValueError("line one\nline  two"), 300, "line one line two"),
        (ValueError(" \n "), 300, "ValueError"),  # an exception is never answered as ""
        ("", None, ""),  # a text is: the caller says what stands for nothing
        ("x" * 12, 10, "xxxxxxx..."),
        ("x" * 10, 10, "x" * 10),
    ],
)
def test_one_line_collapses_whitespace_names_a_silent_exception_and_cuts_at_the_limit(
    error, limit, expected
):
    assert one_line(error, limit=limit) == expected


def test_sanic_statuses_map_to_codes_of_the_same_status():
    wrong = {status: code for status, code in SANIC_CODES.items() if CODES.get(code) != status}
    assert not wrong, wrong
