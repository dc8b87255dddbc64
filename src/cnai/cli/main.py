"""Entry point of the `cnai` command: the Typer app and its command groups."""

from __future__ import annotations

import sys

import typer

from cnai.cli import (
    apply,
    create,
    delete,
    describe,
    get,
    k8s,
    logs,
    platform_cmds,
    serving_cmds,
    simulate,
    tracking_cmds,
    tuning_cmds,
)

app = typer.Typer(
    name="cnai",
    help="cnai: one control plane for the whole ML lifecycle.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
platform_cmds.register(app)
# The resource verbs, in the order kubectl's help lists them.
for module in (create, get, apply, delete, describe, logs):
    module.register(app)
simulate.register(app)
tracking_cmds.register(app)
tuning_cmds.register(app)
serving_cmds.register(app)
k8s.register(app)


def main() -> None:
    """Run the CLI; API errors become one clear line on stderr and exit code 1."""
    from cnai.cli.errors import run_cli

    sys.exit(run_cli(app))
