"""`cnai runs list|show|compare` and `cnai models list|show|alias`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from cnai.cli.errors import fail
from cnai.cli.options import NamespaceOpt, connect, namespace_or_default
from cnai.cli.printers import NONE, table

runs_app = typer.Typer(help="Tracking runs: list, show, compare.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: list, show, alias.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.add_typer(models_app, name="models")


def _tracking(namespace: str | None) -> Any:
    from cnai.tracking.sdk import TrackingClient

    with connect() as client:
        ns = namespace_or_default(client, namespace)
        return TrackingClient(client.config.server, client.config.token, ns)


def _time(ms: int | None) -> str:
    if not ms:
        return NONE
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: float) -> str:
    return f"{value:.6g}"


def _metrics_text(run: dict[str, Any], limit: int = 3) -> str:
    items = sorted(run["metrics"].items())
    text = " ".join(f"{k}={_number(m['value'])}" for k, m in items[:limit])
    more = len(items) - limit
    return (text + (f" (+{more})" if more > 0 else "")) or NONE


@runs_app.command("list")
def runs_list(
    namespace: NamespaceOpt = None,
    group: Annotated[str | None, typer.Option("--group", "-g", help="Only this run group.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
) -> None:
    """Runs, newest first, with their latest metrics."""
    with _tracking(namespace) as tracking:
        runs = tracking.list_runs(group=group, limit=limit)
    rows = [["ID", "NAME", "STATUS", "STARTED", "METRICS"]]
    rows += [
        [r["id"], r["name"], r["status"], _time(r["startTime"]), _metrics_text(r)] for r in runs
    ]
    typer.echo("\n".join(table(rows)) if runs else f"No runs found in {tracking.namespace}.")


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    namespace: NamespaceOpt = None,
) -> None:
    """One run: status, times, owner, params, tags and the latest value of each metric."""
    with _tracking(namespace) as tracking:
        run = tracking.get_run(run_id)
    owner = run["owner"]
    lines = [
        f"Run:       {run['id']}",
        f"Name:      {run['name']}",
        f"Status:    {run['status']}",
        f"Started:   {_time(run['startTime'])}",
        f"Ended:     {_time(run['endTime'])}",
        f"Owner:     {owner['kind']}/{owner['name']}" if owner["kind"] else f"Owner:     {NONE}",
        f"Artifacts: {run['artifactUri']}",
    ]
    for title, values in (("Params", run["params"]), ("Tags", run["tags"])):
        lines.append(f"{title}:" if values else f"{title}:    {NONE}")
        lines += [f"  {k}: {v}" for k, v in sorted(values.items())]
    if run["metrics"]:
        rows = [["METRIC", "VALUE", "STEP"]]
        rows += [
            [k, _number(m["value"]), str(m["step"])] for k, m in sorted(run["metrics"].items())
        ]
        lines += ["Metrics:", *(f"  {line}" for line in table(rows))]
    else:
        lines.append(f"Metrics:   {NONE}")
    typer.echo("\n".join(lines))


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    namespace: NamespaceOpt = None,
) -> None:
    """Params and latest metrics of several runs side by side; differing params marked *."""
    if len(run_ids) < 2:
        raise fail("compare needs at least two run ids")
    with _tracking(namespace) as tracking:
        runs = [tracking.get_run(r) for r in run_ids]
    header = ["", *(r["name"] or r["id"][:8] for r in runs)]
    rows = [header]
    for key in sorted({k for r in runs for k in r["params"]}):
        values = [r["params"].get(key, NONE) for r in runs]
        mark = "*" if len(set(values)) > 1 else " "
        rows.append([f"{mark} param {key}", *values])
    for key in sorted({k for r in runs for k in r["metrics"]}):
        cells = [_number(r["metrics"][key]["value"]) if key in r["metrics"] else NONE for r in runs]
        rows.append([f"  metric {key}", *cells])
    typer.echo("\n".join(table(rows)))


@models_app.command("list")
def models_list(namespace: NamespaceOpt = None) -> None:
    """Registered models with their latest version and aliases."""
    from cnai.tracking.api import Model

    with connect() as client:
        ns = namespace_or_default(client, namespace)
        models = client.list(Model, ns).items
    rows = [["NAME", "DISPLAY NAME", "LATEST", "ALIASES"]]
    for m in models:
        aliases = ", ".join(f"{a}={v}" for a, v in sorted(m.spec.aliases.items())) or NONE
        rows.append([m.metadata.name, m.display, str(m.status.latest_version), aliases])
    typer.echo("\n".join(table(rows)) if models else f"No models found in {ns}.")


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Resource or display name of the model.")],
    namespace: NamespaceOpt = None,
) -> None:
    """A model and its versions."""
    from cnai.tracking.api import ModelVersion

    with connect() as client:
        ns = namespace_or_default(client, namespace)
        model = _find_model(client, ns, name)
        versions = sorted(
            (v for v in client.list(ModelVersion, ns).items if v.spec.model == model.metadata.name),
            key=lambda v: v.spec.version,
        )
    by_version: dict[int, list[str]] = {}
    for alias, number in model.spec.aliases.items():
        by_version.setdefault(number, []).append(alias)
    lines = [f"Model:       {model.display} ({model.metadata.name})"]
    if model.spec.description:
        lines.append(f"Description: {model.spec.description}")
    rows = [["VERSION", "ALIASES", "FORMAT", "RUN", "SOURCE"]]
    for v in versions:
        aliases = ", ".join(sorted(by_version.get(v.spec.version, []))) or NONE
        rows.append(
            [
                str(v.spec.version),
                aliases,
                v.spec.format.value,
                v.spec.run_id or NONE,
                v.spec.source,
            ]
        )
    lines += table(rows) if versions else [f"Versions:    {NONE}"]
    typer.echo("\n".join(lines))


@models_app.command("alias")
def models_alias(
    name: Annotated[str, typer.Argument(help="Resource or display name of the model.")],
    alias: Annotated[str, typer.Argument(help="The alias, e.g. champion.")],
    version: Annotated[int | None, typer.Argument(help="The version it names.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    namespace: NamespaceOpt = None,
) -> None:
    """Point ALIAS at VERSION (models:/NAME@ALIAS then resolves to it), or --delete it."""
    from cnai.tracking.api import ModelVersion, version_name

    if (version is None) != delete:
        raise fail("give a VERSION to set the alias, or --delete to remove it")
    with connect() as client:
        ns = namespace_or_default(client, namespace)
        model = _find_model(client, ns, name)
        if delete:
            if model.spec.aliases.pop(alias, None) is None:
                raise fail(f"model {model.display} has no alias {alias!r}")
        else:
            assert version is not None
            client.get(ModelVersion, version_name(model.metadata.name, version), ns)
            model.spec.aliases[alias] = version
        client.update(model)
    typer.echo(
        f"model {model.display}: alias {alias} "
        + ("deleted" if delete else f"-> version {version}")
    )


def _find_model(client: Any, namespace: str, name: str) -> Any:
    from cnai.core.errors import NotFound
    from cnai.tracking.api import Model
    from cnai.tracking.registry import candidate_names, with_display_name

    for candidate in candidate_names(name):
        try:
            return client.get(Model, candidate, namespace)
        except NotFound:
            continue
    found = with_display_name(client.list(Model, namespace).items, name)
    if found is not None:
        return found
    raise fail(f"model {name!r} not found in namespace {namespace}")
