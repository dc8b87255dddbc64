"""`cnai apply -f`: create or update objects from manifests, reporting one line each.

Like kubectl, apply goes on past an object that fails, reports every failure, and exits
1 at the end if any did.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import typer

from cnai.cli.errors import print_api_error
from cnai.cli.options import FilenameOpt, NamespaceOpt, connect, stdin_or_path
from cnai.cli.printers import name_of
from cnai.core.client import Client
from cnai.core.errors import ApiError, BadRequest
from cnai.core.manifests import load_path, parse_documents


def register(app: typer.Typer) -> None:
    app.command("apply")(apply)


def read_manifests(sources: list[str]) -> list[dict[str, Any]]:
    """Every document of every ``-f`` source, in order; ``-`` reads stdin."""
    docs: list[dict[str, Any]] = []
    for source in sources:
        path = stdin_or_path(source)
        if path is None:
            docs.extend(parse_documents(sys.stdin.read(), "<stdin>"))
        else:
            docs.extend(load_path(path))
    return docs


def require_files(filename: list[str] | None) -> list[str]:
    if not filename:
        raise click.UsageError("must specify -f/--filename (a file, a directory or -)")
    return filename


def target_namespace(client: Client, doc: dict[str, Any], explicit: str | None) -> str | None:
    """The namespace a manifest goes to: its own, else ``-n``, else the config's.

    A manifest naming another namespace than an explicit ``-n`` is refused, as kubectl
    does: silently writing somewhere the user did not say is worse than an error.
    """
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind or not client.ref(kind).namespaced:
        return None
    own = (doc.get("metadata") or {}).get("namespace")
    if own and explicit and own != explicit:
        raise BadRequest(
            f'the namespace from the provided object "{own}" does not match the namespace '
            f'"{explicit}"; pass --namespace={own} or remove it from the manifest'
        )
    return str(own or explicit or client.config.namespace)


def apply(filename: FilenameOpt = None, namespace: NamespaceOpt = None) -> None:
    """Create objects from manifests, or update their spec, labels and annotations."""
    docs = read_manifests(require_files(filename))
    failed = 0
    with connect() as client:
        for doc in docs:
            try:
                result = client.apply(doc, target_namespace(client, doc, namespace))
            except ApiError as exc:
                print_api_error(exc)
                failed += 1
                continue
            typer.echo(f"{name_of(result.object.to_dict())} {result.action}")
    if failed:
        raise typer.Exit(1)
