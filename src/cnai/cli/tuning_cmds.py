"""`cnai experiments register-best`, and the trial table `cnai describe experiment` adds."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cnai.cli.errors import fail
from cnai.cli.options import NamespaceOpt, connect, namespace_or_default
from cnai.cli.printers import NONE, table
from cnai.core.client import Client

experiments_app = typer.Typer(help="Hyperparameter search experiments.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")


def _values(values: list[float]) -> str:
    return ", ".join(f"{v:.6g}" for v in values) or NONE


def trial_lines(client: Client, experiment: dict[str, Any]) -> list[str]:
    """``Trials:`` and a table of the experiment's trials, in number order."""
    meta = experiment.get("metadata") or {}
    listed = client.list(
        "trial", meta.get("namespace"), label_selector=f"cnai.io/experiment-name={meta['name']}"
    ).items
    trials = sorted(listed, key=lambda t: (t.spec or {}).get("number", 0))
    best = ((experiment.get("status") or {}).get("bestTrial") or {}).get("name")
    rows = [["NAME", "STATUS", "VALUES", "PARAMS", "REASON"]]
    for t in trials:
        status = t.status or {}
        name = t.metadata.name + (" *" if t.metadata.name == best else "")
        params = json.dumps((t.spec or {}).get("params", {}), separators=(",", ":"))
        rows.append(
            [
                name,
                status.get("phase", ""),
                _values(status.get("values") or []),
                params,
                status.get("reason") or NONE,
            ]
        )
    if len(rows) == 1:
        return ["Trials:  <none>"]
    return ["Trials:  (* best)", *("  " + line for line in table(rows))]


@experiments_app.command("register-best")
def register_best(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    model: Annotated[str, typer.Option("--model", help="Register as this model.")],
    path: Annotated[
        str, typer.Option("--path", help="The model's path among the best trial's artifacts.")
    ] = "model",
    format: Annotated[str, typer.Option("--format", help="How to load it.")] = "custom",
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="Point this alias at it (repeatable).")
    ] = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Register the best trial's model as the next version of MODEL, with lineage to the
    trial's run and its objective values as metrics."""
    from cnai.tracking.sdk import TrackingClient

    with connect() as client:
        ns = namespace_or_default(client, namespace)
        exp = client.get("experiment", name, ns)
        best = (exp.status or {}).get("bestTrial")
        if not best or not best.get("runId"):
            raise fail(f"experiment {name} has no succeeded trial with a run yet")
        objective = (exp.spec or {})["objective"]
        metrics = [objective["metric"], *(m["metric"] for m in objective.get("additional", []))]
        with TrackingClient(client.config.server, client.config.token, ns) as tracking:
            run = tracking.get_run(best["runId"])
            source = f"{str(run['artifactUri']).rstrip('/')}/{path.strip('/')}"
            version = tracking.register_model(
                model,
                source,
                runId=best["runId"],
                format=format,
                metrics=dict(zip(metrics, best.get("values") or [], strict=False)),
                aliases=list(alias or []),
                description=f"best trial {best['name']} of experiment {name}",
            )
    spec = version["spec"]
    typer.echo(
        f"registered models:/{spec['model']}/{spec['version']} from trial {best['name']} "
        f"(run {best['runId']})"
    )
