"""What the resource commands share: their common options, the client and kind lookup.

Kinds are resolved through the server's discovery (:meth:`Client.ref`), so a kind that
a capability package adds later works in every command without a CLI change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cnai.cli.printers import PrintColumn, columns_of
from cnai.core.client import Client, KindRef

NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Namespace to use (default: the config file's namespace).",
        show_default=False,
    ),
]
FilenameOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filename",
        "-f",
        help="Manifest file, directory of .yaml/.yml/.json files, or - for stdin. Repeatable.",
        show_default=False,
    ),
]
RevealOpt = Annotated[
    bool,
    typer.Option(
        "--reveal", help="Show Secret values; without it they are replaced by their size."
    ),
]


@dataclass(frozen=True)
class KindView:
    """A kind resolved through discovery: how to reach it and how to print it."""

    ref: KindRef
    discovery: dict[str, Any]

    def columns(self, wide: bool) -> list[PrintColumn]:
        return columns_of(self.discovery, wide)


def connect() -> Client:
    """A client for the current config context (``$CNAI_HOME/config.yaml`` and env)."""
    return Client()


def namespace_or_default(client: Client, namespace: str | None) -> str:
    return namespace or client.config.namespace


def resolve_kind(client: Client, kind: str) -> KindView:
    """Look ``kind`` up by any of its names; NotFound names the unknown type."""
    entries = {str(r.get("name")): r for r in client.resources()}
    ref = client.ref(kind)
    return KindView(ref, entries.get(ref.plural, {}))


def utcnow() -> datetime:
    return datetime.now(UTC)


def stdin_or_path(source: str) -> Path | None:
    """None for ``-`` (stdin), else the path."""
    return None if source == "-" else Path(source)
