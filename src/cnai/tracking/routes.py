"""cnai's own tracking API, beside the resource API and behind the same tokens.

Under ``/apis/tracking.cnai.io/v1/namespaces/{ns}``:

- ``rungroups``: ``GET`` lists, ``POST {"name", "tags"}`` creates.
- ``runs``: ``GET ?group=NAME&ownerUid=UID&q=TEXT&ids=A,B&sort=-metrics.loss&limit=N&offset=M``
  lists one page (newest first unless sorted; see :mod:`cnai.tracking.search`) with
  each run's latest metrics, as ``{"items", "total"}`` (total: runs matching), ``POST
  {"group", "name", "params", "tags", "owner": {"kind", "name", "uid"}, "startTime"}``
  creates; ``runs/{id}``: ``GET``, and ``PATCH {"status", "endTime", "name"}``.
- ``runs/{id}/log``: ``POST {"metrics": {KEY: {"steps": [...], "values": [...],
  "timestamps": [...]}}, "params": {...}, "tags": {...}, "batchId": ID}`` records all of
  it at once and answers ``{"points": N}`` once committed; a batch id already applied to
  the run is not applied twice (a client may resend a batch whose answer it lost).
  Metrics travel as columns: one list per field rather than an object per point, a
  third of the bytes of MLflow's encoding.
- ``runs/{id}/metrics/{key}``: ``GET`` the history, as the same columns;
  ``?maxPoints=N`` thins it to at most N points, evenly spaced, first and last kept.
- ``metrics:history``: ``POST {"key", "runs": [ids], "maxPoints": N}`` the histories of
  one metric for up to 1,000 runs in one request (for comparing runs), each thinned to
  at most ``maxPoints`` when given.
- ``models/{name}/versions``: ``POST {"source", "runId", "format", "signature",
  "metrics", "description", "tags", "aliases": [...]}`` registers the next version of
  the model called ``name`` (registered first if new; a Model and a ModelVersion
  resource, checked by their admission rules) and points the aliases at it.
- ``runs/{id}/artifacts/{path}``: ``PUT`` a file (streamed; up to 20 GiB, beyond the
  API's body limit), ``GET`` it back, or list a directory (``GET runs/{id}/artifacts``
  lists the root).

Times are milliseconds since 1970. Errors are the API's usual JSON errors with the field
and the rule (``metrics[loss].values[3]: nan is not a finite number ...``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic_core import from_json, to_json
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cnai.core.auth import authorize
from cnai.core.errors import BadRequest, NotFound
from cnai.core.server.extensions import RouteContext
from cnai.tracking import registry
from cnai.tracking.artifacts import (
    ARTIFACT_ROOT_ENV,
    MAX_ARTIFACT_BYTES,
    UPLOAD_PATHS,
    ArtifactStore,
)
from cnai.tracking.search import RunQuery
from cnai.tracking.store import Owner, Points, Run, RunGroup, TrackingStore

GROUP = "tracking.cnai.io"
VERSION = "v1"
PREFIX = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}"
JSON = "application/json"
MAX_HISTORY_RUNS = 1000
# Bounds of maxPoints, which thins each history to that many points (Points.thinned).
MIN_POINTS, MAX_POINTS = 2, 100_000


def _json(data: Any, status: int = 200) -> Response:
    return Response(to_json(data), status_code=status, media_type=JSON)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = from_json(raw) if raw else {}
    except ValueError as exc:
        raise BadRequest(f"body: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadRequest("body: must be a JSON object")
    return data


def _mapping(data: Mapping[str, Any], field: str) -> dict[str, Any]:
    value = data.get(field) or {}
    if not isinstance(value, dict):
        raise BadRequest(f"{field}: must be an object")
    return value


def _int(data: Mapping[str, Any], field: str) -> int | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{field}: must be an integer (milliseconds since 1970)")
    return value


def _text(data: Mapping[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{field}: must be a string")
    return value


def metrics_of(data: Mapping[str, Any]) -> dict[str, Points]:
    """``{"metrics": {KEY: {"steps", "values", "timestamps"}}}`` as checked points."""
    out = {}
    for key, columns in _mapping(data, "metrics").items():
        if not isinstance(columns, dict):
            raise BadRequest(f"metrics[{key}]: must be an object of steps, values, timestamps")
        missing = [
            c for c in ("steps", "values", "timestamps") if not isinstance(columns.get(c), list)
        ]
        if missing:
            raise BadRequest(f"metrics[{key}]: {', '.join(missing)} must be lists")
        out[key] = Points.of(key, columns["steps"], columns["values"], columns["timestamps"])
    return out


def max_points(raw: object) -> int | None:
    """``maxPoints`` (a query string's text or a body's number): None when absent."""
    if raw is None or raw == "":
        return None
    try:
        most = int(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else 0
    except ValueError:
        most = 0
    if not MIN_POINTS <= most <= MAX_POINTS:
        raise BadRequest(f"maxPoints: must be a whole number from {MIN_POINTS} to {MAX_POINTS}")
    return most


def points_json(points: Points) -> dict[str, list[Any]]:
    return {
        "steps": points.steps.tolist(),
        "values": points.values.tolist(),
        "timestamps": points.timestamps.tolist(),
    }


def run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "namespace": run.namespace,
        "groupId": run.group_id,
        "name": run.name,
        "status": run.status,
        "startTime": run.start_ms,
        "endTime": run.end_ms,
        "owner": {"kind": run.owner.kind, "name": run.owner.name, "uid": run.owner.uid},
        "artifactUri": run.artifact_uri,
        "params": dict(run.params),
        "tags": dict(run.tags),
        "metrics": {
            k: {"value": m.value, "step": m.step, "timestamp": m.timestamp}
            for k, m in run.latest.items()
        },
    }


def group_json(group: RunGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "namespace": group.namespace,
        "name": group.name,
        "createdTime": group.created_ms,
        "tags": dict(group.tags),
    }


def tracking_routes(store: TrackingStore, files: ArtifactStore, api: Any) -> list[BaseRoute]:
    """The routes, over ``store`` and ``files``, authenticated by ``api`` (the resource
    API server)."""

    def allow(request: Request, verb: str, plural: str = "runs") -> str:
        ns: str = request.path_params["ns"]
        authorize(api.principal(request), namespace=ns, namespaced=True, plural=plural, verb=verb)
        return ns

    async def groups(request: Request) -> Response:
        if request.method == "GET":
            ns = allow(request, "list", "rungroups")
            return _json({"items": [group_json(g) for g in await store.list_groups(ns)]})
        ns = allow(request, "create", "rungroups")
        data = await _body(request)
        name = data.get("name")
        if not isinstance(name, str):
            raise BadRequest("name: a run group needs a name")
        tags = {str(k): str(v) for k, v in _mapping(data, "tags").items()}
        return _json(group_json(await store.create_group(ns, name, tags)), 201)

    async def runs(request: Request) -> Response:
        if request.method == "GET":
            ns = allow(request, "list")
            query = RunQuery.parse(request.query_params)
            group_ids = None
            if query.group:
                group_ids = ((await store.group(ns, name=query.group)).id,)
            found, total = await store.search_runs(
                ns, query.filter(group_ids), query.order, limit=query.limit, offset=query.offset
            )
            return _json({"items": [run_json(r) for r in found], "total": total})
        ns = allow(request, "create")
        data = await _body(request)
        group_id = None
        if data.get("group"):
            group = data["group"]
            if not isinstance(group, str):
                raise BadRequest("group: must be a run group's name")
            group_id = (await store.ensure_group(ns, group)).id
        owner = _mapping(data, "owner")
        run = await store.create_run(
            ns,
            group_id=group_id,
            name=str(data.get("name") or ""),
            owner=Owner(
                str(owner.get("kind", "")), str(owner.get("name", "")), str(owner.get("uid", ""))
            ),
            params=_mapping(data, "params"),
            tags=_mapping(data, "tags"),
            start_ms=_int(data, "startTime"),
        )
        return _json(run_json(run), 201)

    async def run(request: Request) -> Response:
        run_id = request.path_params["id"]
        if request.method == "GET":
            ns = allow(request, "get")
            return _json(run_json(await store.get_run(ns, run_id)))
        ns = allow(request, "update")
        data = await _body(request)
        status = data.get("status")
        if status is not None and not isinstance(status, str):
            raise BadRequest("status: must be a string")
        updated = await store.update_run(
            ns, run_id, status=status, end_ms=_int(data, "endTime"), name=data.get("name")
        )
        return _json(run_json(updated))

    async def log(request: Request) -> Response:
        ns = allow(request, "update")
        data = await _body(request)
        written = await store.log(
            ns,
            request.path_params["id"],
            metrics=metrics_of(data),
            params=_mapping(data, "params"),
            tags=_mapping(data, "tags"),
            batch_id=_text(data, "batchId"),
        )
        return _json({"points": written})

    async def history(request: Request) -> Response:
        ns = allow(request, "get")
        p = request.path_params
        most = max_points(request.query_params.get("maxPoints"))
        points = await store.history(ns, p["id"], p["key"])
        return _json(points_json(points.thinned(most) if most else points))

    async def histories(request: Request) -> Response:
        ns = allow(request, "get")
        data = await _body(request)
        key, run_ids = data.get("key"), data.get("runs")
        if not isinstance(key, str) or not key:
            raise BadRequest("key: the metric to read is required")
        if not isinstance(run_ids, list) or not all(isinstance(r, str) for r in run_ids):
            raise BadRequest("runs: must be a list of run ids")
        if len(run_ids) > MAX_HISTORY_RUNS:
            raise BadRequest(f"runs: at most {MAX_HISTORY_RUNS} runs per request")
        most = max_points(data.get("maxPoints"))
        found = await store.histories(ns, run_ids, key)
        if most:
            found = {r: p.thinned(most) for r, p in found.items()}
        return _json({"key": key, "runs": {r: points_json(p) for r, p in found.items()}})

    async def artifacts(request: Request) -> Response:
        run_id, rel = request.path_params["id"], request.path_params.get("path", "")
        if request.method == "PUT":
            ns = allow(request, "update")
            await store.get_run(ns, run_id)  # it exists, in this namespace
            size = await files.put(ns, run_id, rel, request.stream())
            return _json({"path": rel, "size": size}, 201)
        ns = allow(request, "get")
        await store.get_run(ns, run_id)
        if rel and files.exists_file(ns, run_id, rel):
            if files.local:
                return FileResponse(files.file(ns, run_id, rel))
            return StreamingResponse(files.read(ns, run_id, rel))
        if rel and not files.exists_dir(ns, run_id, rel):
            raise NotFound(f"artifact {rel!r} not found in run {run_id}")
        entries = files.list(ns, run_id, rel)
        return _json(
            {"files": [{"path": e.path, "isDir": e.is_dir, "size": e.size} for e in entries]}
        )

    async def register_version(request: Request) -> Response:
        ns = allow(request, "create", "modelversions")
        data = await _body(request)
        source = data.get("source")
        if not isinstance(source, str) or not source:
            raise BadRequest("source: the URI of the version's artifacts is required")
        aliases = data.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise BadRequest("aliases: must be a list of alias names")
        fields = ("runId", "format", "signature", "metrics", "description", "tags")
        spec = {"source": source, **{k: data[k] for k in fields if k in data}}
        name = request.path_params["name"]
        version = await registry.register(api.service, ns, name, spec, aliases)
        return _json(version.to_dict(), 201)

    return [
        Route(PREFIX + "/models/{name}/versions", register_version, methods=["POST"]),
        Route(PREFIX + "/runs/{id}/artifacts", artifacts, methods=["GET"]),
        Route(PREFIX + "/runs/{id}/artifacts/{path:path}", artifacts, methods=["GET", "PUT"]),
        Route(PREFIX + "/rungroups", groups, methods=["GET", "POST"]),
        Route(PREFIX + "/runs", runs, methods=["GET", "POST"]),
        Route(PREFIX + "/runs/{id}", run, methods=["GET", "PATCH"]),
        Route(PREFIX + "/runs/{id}/log", log, methods=["POST"]),
        Route(PREFIX + "/runs/{id}/metrics/{key:path}", history, methods=["GET"]),
        Route(PREFIX + "/metrics:history", histories, methods=["POST"]),
    ]


def route_factory(ctx: RouteContext) -> list[BaseRoute]:
    """Open the tracking store under the platform's state directory; its routes (cnai's
    tracking API and MLflow's)."""
    from cnai.tracking.mlflow_api import mlflow_routes
    from cnai.tracking.workloads import TRACKING_STORE

    root = os.environ.get(ARTIFACT_ROOT_ENV) or ctx.home / "artifacts"
    files = ArtifactStore(root)
    store = TrackingStore(ctx.home / "tracking.db", artifact_root=root)
    ctx.on_close(store.close)
    ctx.services[TRACKING_STORE] = store  # the job controllers' runs (tracking.workloads)
    ctx.api.body_limits.append((UPLOAD_PATHS, MAX_ARTIFACT_BYTES))
    return [*tracking_routes(store, files, ctx.api), *mlflow_routes(store, files, ctx.api)]
