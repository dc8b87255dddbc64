"""`cnai rollout promote|rollback|status NAME`: move an InferenceService's traffic.

A rollout starts by changing the predictor with ``canaryTrafficPercent`` set (the new
revision takes that share, the previous one the rest). ``promote`` gives the latest
revision all traffic (it removes ``canaryTrafficPercent``); ``rollback`` gives it none
(``canaryTrafficPercent: 0``: the previous revision serves everything again). The
revision that loses its traffic drains its requests in flight before it stops.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cnai.cli.options import NamespaceOpt, connect, namespace_or_default
from cnai.cli.printers import table

rollout_app = typer.Typer(help="Canary rollouts of InferenceServices.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The InferenceService.")]


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")


def _revisions(isvc: Any) -> list[str]:
    rows = [["REVISION", "TRAFFIC", "READY", "MODEL"]]
    for r in (isvc.status or {}).get("revisions") or []:
        rows.append(
            [
                r.get("name", ""),
                f"{r.get('trafficPercent', 0)}%",
                f"{r.get('readyReplicas', 0)}/{r.get('replicas', 0)}",
                r.get("model", ""),
            ]
        )
    return table(rows)


def _set_canary(name: str, percent: int | None, namespace: str | None, done: str) -> None:
    with connect() as client:
        ns = namespace_or_default(client, namespace)
        client.patch("inferenceservice", name, {"spec": {"canaryTrafficPercent": percent}}, ns)
    typer.echo(f"inferenceservice/{name} {done}")


@rollout_app.command("promote")
def promote(name: NameArg, namespace: NamespaceOpt = None) -> None:
    """Give the latest revision all traffic (removes canaryTrafficPercent)."""
    _set_canary(name, None, namespace, "promoted: the latest revision takes all traffic")


@rollout_app.command("rollback")
def rollback(name: NameArg, namespace: NamespaceOpt = None) -> None:
    """Send all traffic back to the previous revision (canaryTrafficPercent: 0)."""
    _set_canary(name, 0, namespace, "rolled back: the previous revision takes all traffic")


@rollout_app.command("status")
def status(name: NameArg, namespace: NamespaceOpt = None) -> None:
    """The service's revisions with their traffic and replicas."""
    with connect() as client:
        ns = namespace_or_default(client, namespace)
        isvc = client.get("inferenceservice", name, ns)
    for line in _revisions(isvc):
        typer.echo(line)
