"""`cnai logs POD [-f]`: print a pod's output; with -f, follow it to the end.

A follower that loses its connection (the platform restarted, say) reconnects and
resumes from the byte it had reached, so no line is lost or printed twice.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from cnai.cli.options import NamespaceOpt, connect, namespace_or_default
from cnai.core.client import Client
from cnai.core.errors import Unreachable
from cnai.core.pods import Pod, PodPhase

RECONNECT_FOR_S = 120.0
RETRY_EVERY_S = 0.5


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)


def logs(
    name: Annotated[str, typer.Argument(help="The pod.", show_default=False)],
    namespace: NamespaceOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the process ends.")
    ] = False,
) -> None:
    """Print a pod's output (stdout and stderr)."""
    with connect() as client:
        ns = namespace_or_default(client, namespace)
        if not follow:
            for chunk in client.logs(name, ns):
                _write(chunk)
            return
        _follow(client, name, ns)


def _follow(client: Client, name: str, ns: str) -> None:
    offset = 0
    last_contact = time.monotonic()
    while True:
        try:
            for chunk in client.logs(name, ns, follow=True, offset=offset):
                _write(chunk)
                offset += len(chunk)
            phase = client.get(Pod, name, ns).status.phase
            last_contact = time.monotonic()
            if phase.terminal or phase is PodPhase.UNKNOWN:
                return
        except Unreachable:
            if time.monotonic() - last_contact > RECONNECT_FOR_S:
                raise
        time.sleep(RETRY_EVERY_S)  # not started yet, or reconnecting


def _write(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
