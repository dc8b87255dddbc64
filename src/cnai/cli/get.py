"""`cnai get`: list or read objects of any kind as a table, yaml, json or names.

With ``-w`` it prints the list, then one more row (or document) per watch event,
resuming from the list's resourceVersion so nothing between the two is missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Annotated, Any

import click
import typer

from cnai.cli.errors import err_console
from cnai.cli.options import (
    KindView,
    NamespaceOpt,
    RevealOpt,
    connect,
    namespace_or_default,
    resolve_kind,
    utcnow,
)
from cnai.cli.printers import (
    FORMATS,
    PrintColumn,
    align,
    as_list,
    headers,
    name_of,
    render,
    row,
    widths,
)
from cnai.cli.redaction import Reveal, present
from cnai.core.client import Client


def register(app: typer.Typer) -> None:
    app.command("get")(get)


@dataclass(frozen=True)
class Query:
    """Which objects ``get`` reads."""

    view: KindView
    namespace: str
    names: tuple[str, ...]
    all_namespaces: bool
    label_selector: str | None
    field_selector: str | None

    def fetch(self, client: Client) -> tuple[list[dict[str, Any]], str]:
        """The objects and the resourceVersion to watch from ('' for named reads)."""
        if self.names:
            objs = [client.get(self.view.ref.plural, n, self.namespace) for n in self.names]
            return [o.to_dict() for o in objs], ""
        listed = client.list(
            self.view.ref.plural,
            self.namespace,
            all_namespaces=self.all_namespaces,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        return [o.to_dict() for o in listed.items], listed.resource_version

    @property
    def with_namespace_column(self) -> bool:
        return self.all_namespaces and self.view.ref.namespaced

    def nothing_found(self) -> str:
        if self.view.ref.namespaced and not self.all_namespaces:
            return f"No resources found in {self.namespace} namespace."
        return "No resources found"


@dataclass
class Printer:
    """Prints a list, then watch events, in one output format."""

    fmt: str
    columns: list[PrintColumn]
    with_namespace: bool
    col_widths: list[int] = field(default_factory=list)

    def header(self) -> list[str]:
        return headers(self.columns, self.with_namespace)

    def table_row(self, obj: dict[str, Any]) -> list[str]:
        return row(obj, self.columns, self.with_namespace, utcnow())

    def print_all(self, objs: Sequence[dict[str, Any]], rv: str, single: bool) -> None:
        if self.fmt in ("yaml", "json"):
            body = objs[0] if single and len(objs) == 1 else as_list(objs, rv)
            typer.echo(render(body, self.fmt), nl=False)
        elif self.fmt == "name":
            for obj in objs:
                typer.echo(name_of(obj))
        elif objs:
            self.print_rows([self.table_row(o) for o in objs], with_header=True)

    def print_rows(self, rows: list[list[str]], with_header: bool) -> None:
        if with_header:
            rows = [self.header(), *rows]
        # Columns only ever widen, so watch rows stay aligned with what came before.
        grown = [max(pair) for pair in zip_longest(widths(rows), self.col_widths, fillvalue=0)]
        self.col_widths = grown
        for cells in rows:
            typer.echo(align(cells, grown))

    def print_event(self, obj: dict[str, Any]) -> None:
        if self.fmt == "yaml":
            typer.echo("---\n" + render(obj, "yaml"), nl=False)
        elif self.fmt == "json":
            typer.echo(render(obj, "json"), nl=False)
        elif self.fmt == "name":
            typer.echo(name_of(obj))
        else:
            self.print_rows([self.table_row(obj)], with_header=not self.col_widths)


def get(
    kind: Annotated[str, typer.Argument(help="Kind: plural, singular, short name or Kind.")],
    names: Annotated[list[str] | None, typer.Argument(help="Names to read.")] = None,
    namespace: NamespaceOpt = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List across all namespaces.")
    ] = False,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Label selector, e.g. app=web,tier!=db.")
    ] = None,
    field_selector: Annotated[
        str | None, typer.Option("--field-selector", help="Field selector, e.g. metadata.name=x.")
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="wide, yaml, json or name.")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="After listing, print changes until Ctrl-C.")
    ] = False,
    reveal: RevealOpt = False,
) -> None:
    """Show objects: a table by default, or yaml, json or names. KIND may list several
    kinds separated by commas (``jobs,pods``), each printed as its own table."""
    fmt = _check_output(output)
    kinds = [k for k in kind.split(",") if k]
    if len(kinds) > 1 and (names or watch):
        raise click.UsageError("several kinds take no NAME and no --watch")
    if watch and names and len(names) > 1:
        raise click.UsageError("--watch takes at most one NAME")
    with connect() as client:
        for index, one in enumerate(kinds):
            if index and fmt in ("table", "wide"):
                typer.echo("")
            view = resolve_kind(client, one)
            query = Query(
                view,
                namespace_or_default(client, namespace),
                tuple(names or ()) if not watch else (),
                all_namespaces,
                selector,
                _name_selector(field_selector, names) if watch else field_selector,
            )
            _show(client, query, fmt, watch, bool(names), _reveal(reveal))


def _show(client: Client, query: Query, fmt: str, watch: bool, named: bool, shown: Reveal) -> None:
    printer = Printer(fmt, query.view.columns(fmt == "wide"), query.with_namespace_column)
    objs, rv = query.fetch(client)
    if not objs and fmt in ("table", "wide"):
        err_console.print(query.nothing_found(), markup=False)
    printer.print_all([present(o, shown) for o in objs], rv, single=named and not watch)
    if watch:
        _follow(client, query, printer, rv, shown)


def _check_output(output: str | None) -> str:
    if output is None:
        return "table"
    if output not in FORMATS:
        raise click.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="'-o'")
    return output


def _name_selector(field_selector: str | None, names: list[str] | None) -> str | None:
    """Watching one name is watching the list with ``metadata.name=NAME``."""
    terms = [t for t in (field_selector, *(f"metadata.name={n}" for n in names or ())) if t]
    return ",".join(terms) or None


def _reveal(reveal: bool) -> Reveal:
    return Reveal.STORED if reveal else Reveal.HIDDEN


def _follow(client: Client, query: Query, printer: Printer, rv: str, shown: Reveal) -> None:
    try:
        for event in client.watch(
            query.view.ref.plural,
            query.namespace,
            all_namespaces=query.all_namespaces,
            resource_version=rv or None,
            label_selector=query.label_selector,
            field_selector=query.field_selector,
        ):
            printer.print_event(present(event.object.to_dict(), shown))
    except KeyboardInterrupt:
        # Ctrl-C is how a watch is meant to end, not a failure.
        return
