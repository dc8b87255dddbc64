"""`cnai create`: imperative shortcuts for namespaces, secrets and tokens.

Secret values are base64-encoded here, from literals or file bytes, so binary files
travel intact; they are never echoed back. A token is printed once, on stdout alone
(so it can be captured), with how to use it on stderr.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import click
import typer

from cnai.cli.errors import err_console
from cnai.cli.options import NamespaceOpt, connect, namespace_or_default
from cnai.cli.printers import name_of
from cnai.core.kinds import Namespace, Secret

create_app = typer.Typer(help="Create a namespace, a secret or an API token.", no_args_is_help=True)
secret_app = typer.Typer(help="Create a secret.", no_args_is_help=True)
create_app.add_typer(secret_app, name="secret")


def register(app: typer.Typer) -> None:
    app.add_typer(create_app, name="create")


@create_app.command("namespace")
def create_namespace(name: Annotated[str, typer.Argument(help="Name of the namespace.")]) -> None:
    """Create a namespace."""
    with connect() as client:
        created = client.create(Namespace.new(name))
    typer.echo(f"{name_of(created.to_dict())} created")


@secret_app.command("generic")
def create_secret_generic(
    name: Annotated[str, typer.Argument(help="Name of the secret.")],
    from_literal: Annotated[
        list[str] | None,
        typer.Option("--from-literal", help="KEY=VALUE; repeatable.", show_default=False),
    ] = None,
    from_file: Annotated[
        list[str] | None,
        typer.Option(
            "--from-file",
            help="[KEY=]PATH: a file's bytes (key: the file name); repeatable.",
            show_default=False,
        ),
    ] = None,
    secret_type: Annotated[str, typer.Option("--type", help="The secret's type.")] = "Opaque",  # noqa: S107 - a Secret type name, not a password
    namespace: NamespaceOpt = None,
) -> None:
    """Create a secret from literal values and files."""
    data = secret_data(from_literal or [], from_file or [])
    with connect() as client:
        ns = namespace_or_default(client, namespace)
        created = client.create(Secret.new(name, ns, type=secret_type, data=data))
    typer.echo(f"{name_of(created.to_dict())} created")


def secret_data(literals: list[str], files: list[str]) -> dict[str, str]:
    """Keys to base64 values; a key given twice is a usage error, as in kubectl."""
    pairs = [_literal(item) for item in literals] + [_file(item) for item in files]
    data: dict[str, str] = {}
    for key, raw in pairs:
        if key in data:
            raise click.UsageError(f"key {key!r} is given more than once")
        data[key] = base64.b64encode(raw).decode()
    return data


def _literal(item: str) -> tuple[str, bytes]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--from-literal'")
    return key, value.encode()


def _file(item: str) -> tuple[str, bytes]:
    key, sep, path_text = item.partition("=")
    if not sep:
        key, path_text = "", item
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise click.BadParameter(f"{path_text}: not a readable file", param_hint="'--from-file'")
    return key or path.name, path.read_bytes()


@create_app.command("token")
def create_token(
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Limit the token to this namespace; without it the token is an admin token.",
            show_default=False,
        ),
    ] = None,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create an API token (admin only). It is shown once: store it now."""
    with connect() as client:
        issued = client.create_token(namespace, description)
        server = client.config.server
    token = str(issued["token"])
    scope = f"namespace {namespace!r}" if namespace else "admin (all namespaces)"
    typer.echo(token)
    err_console.print(
        f"token {issued.get('id')} for {scope} created; it is shown only once.\n"
        f"Use it with:  CNAI_SERVER={server} CNAI_TOKEN=<token> cnai get ..."
        + (f" -n {namespace}" if namespace else "")
        + "\nor add a context with this server and token to your config file "
        "($CNAI_HOME/config.yaml) and select it with CNAI_CONTEXT.",
        markup=False,
    )
