"""How `cnai get` prints a list and then watch events."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.cli.get import Printer, _name_selector
from cnai.cli.printers import PrintColumn

TYPE = [PrintColumn("TYPE", "type")]


def secret(name: str, type_: str = "Opaque") -> dict[str, Any]:
    return {"kind": "Secret", "metadata": {"name": name}, "type": type_}


def test_watch_rows_stay_aligned_and_columns_only_widen(capsys: pytest.CaptureFixture[str]) -> None:
    printer = Printer("table", TYPE, with_namespace=False)
    printer.print_all([secret("db")], "5", single=False)
    printer.print_event(secret("a-much-longer-name", "tls"))
    printer.print_event(secret("x"))
    assert capsys.readouterr().out.splitlines() == [
        "NAME   TYPE     AGE",
        "db     Opaque   <unknown>",
        "a-much-longer-name   tls      <unknown>",
        "x                    Opaque   <unknown>",
    ]


def test_first_watch_event_of_an_empty_list_brings_the_header(
    capsys: pytest.CaptureFixture[str],
) -> None:
    printer = Printer("table", TYPE, with_namespace=False)
    printer.print_all([], "5", single=False)
    printer.print_event(secret("db"))
    printer.print_event(secret("db2"))
    assert capsys.readouterr().out.splitlines() == [
        "NAME   TYPE     AGE",
        "db     Opaque   <unknown>",
        "db2    Opaque   <unknown>",
    ]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        pytest.param("name", "secret/db\n", id="name-per-event"),
        pytest.param("yaml", "---\nkind: Secret\n", id="yaml-documents-separated"),
        pytest.param("json", '{\n  "kind": "Secret"', id="json-objects"),
    ],
)
def test_watch_events_in_other_formats(
    fmt: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Printer(fmt, TYPE, with_namespace=False).print_event(secret("db"))
    assert capsys.readouterr().out.startswith(expected)


def test_single_named_object_prints_bare_and_several_as_a_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    printer = Printer("yaml", TYPE, with_namespace=False)
    printer.print_all([secret("db")], "", single=True)
    assert capsys.readouterr().out.startswith("kind: Secret\n")
    printer.print_all([secret("db"), secret("b")], "", single=True)
    assert capsys.readouterr().out.startswith("apiVersion: v1\nkind: List\n")


@pytest.mark.parametrize(
    ("field_selector", "names", "expected"),
    [
        pytest.param(None, None, None, id="nothing-pinned"),
        pytest.param(None, ["db"], "metadata.name=db", id="watching-one-name"),
        pytest.param("type=Opaque", ["db"], "type=Opaque,metadata.name=db", id="both-combined"),
    ],
)
def test_watching_a_name_is_a_field_selector(
    field_selector: str | None, names: list[str] | None, expected: str | None
) -> None:
    assert _name_selector(field_selector, names) == expected
