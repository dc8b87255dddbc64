"""`cnai delete`: delete named objects, or the objects a manifest describes.

An object with finalizers is only marked for deletion (its controllers finish the job);
the output says which of the two happened. ``--cascade`` is kubectl's: background
(default) deletes the object now and its dependents after, foreground deletes the
dependents first, orphan keeps them. Failures are reported one by one and make
the command exit 1 at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import click
import typer

from cnai.cli.apply import read_manifests, target_namespace
from cnai.cli.errors import print_api_error
from cnai.cli.options import FilenameOpt, NamespaceOpt, connect, namespace_or_default
from cnai.core.client import Client
from cnai.core.errors import ApiError, NotFound
from cnai.core.store.protocol import PropagationPolicy


def register(app: typer.Typer) -> None:
    app.command("delete")(delete)


class Cascade(StrEnum):
    """kubectl's --cascade values, each a deletion propagation policy."""

    BACKGROUND = "background"
    FOREGROUND = "foreground"
    ORPHAN = "orphan"

    @property
    def policy(self) -> PropagationPolicy:
        return PropagationPolicy(self.value.capitalize())


@dataclass(frozen=True)
class Target:
    """One object to delete."""

    kind: str
    name: str
    namespace: str | None


def deleted_message(obj: dict[str, Any]) -> str:
    """``secret "db" deleted``, or ``... marked for deletion`` while finalizers remain."""
    meta = obj.get("metadata") or {}
    pending = meta.get("deletionTimestamp") and meta.get("finalizers")
    what = "marked for deletion" if pending else "deleted"
    return f'{str(obj.get("kind", "")).lower()} "{meta.get("name", "")}" {what}'


def delete(
    kind: Annotated[
        str | None, typer.Argument(help="Kind: plural, singular, short name or Kind.")
    ] = None,
    names: Annotated[list[str] | None, typer.Argument(help="Names to delete.")] = None,
    namespace: NamespaceOpt = None,
    filename: FilenameOpt = None,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="Treat a missing object as deleted.")
    ] = False,
    cascade: Annotated[
        Cascade,
        typer.Option(
            "--cascade",
            help="What happens to the objects these own: background (delete them after), "
            "foreground (delete them first) or orphan (keep them).",
            case_sensitive=False,
        ),
    ] = Cascade.BACKGROUND,
) -> None:
    """Delete objects by kind and name, or those described by manifests (-f)."""
    failed = 0
    with connect() as client:
        for target in _targets(client, kind, names or [], namespace, filename):
            try:
                obj = client.delete(
                    target.kind,
                    target.name,
                    target.namespace,
                    propagation_policy=cascade.policy.value,
                )
            except NotFound as exc:
                if not ignore_not_found:
                    print_api_error(exc)
                    failed += 1
                continue
            except ApiError as exc:
                print_api_error(exc)
                failed += 1
                continue
            typer.echo(deleted_message(obj.to_dict()))
    if failed:
        raise typer.Exit(1)


def _targets(
    client: Client,
    kind: str | None,
    names: list[str],
    namespace: str | None,
    filename: list[str] | None,
) -> list[Target]:
    if filename:
        if kind:
            raise click.UsageError("pass either KIND NAME... or -f, not both")
        return [_from_manifest(client, doc, namespace) for doc in read_manifests(filename)]
    if not kind or not names:
        raise click.UsageError("specify KIND and at least one NAME, or -f FILE")
    ns = namespace_or_default(client, namespace)
    return [Target(kind, name, ns) for name in names]


def _from_manifest(client: Client, doc: dict[str, Any], namespace: str | None) -> Target:
    name = (doc.get("metadata") or {}).get("name")
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind or not name:
        raise click.UsageError("every manifest passed to delete -f needs kind and metadata.name")
    return Target(kind, str(name), target_namespace(client, doc, namespace))
