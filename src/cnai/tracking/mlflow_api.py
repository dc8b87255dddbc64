"""MLflow's tracking and model registry REST API, for the real ``mlflow`` client.

``mlflow.set_tracking_uri("http://HOST:PORT")`` with ``MLFLOW_TRACKING_TOKEN`` set to a
cnai token: experiments, runs, params, tags, metrics (one at a time or in batches) and
metric histories work as against an MLflow server; so do registered models, versions,
tags and aliases, stored as ``Model`` and ``ModelVersion`` resources. MLflow's
experiments are cnai's run groups (not the tuning ``Experiment`` kind). Calls land in
the namespace of the token (an admin token's is ``default``). Unlike MLflow's server, a
batch is not limited to 1,000 metrics: only the request body limit applies.

Errors use MLflow's shape, ``{"error_code": "INVALID_PARAMETER_VALUE", "message": ...}``,
with the HTTP status MLflow uses, so the client raises its usual ``MlflowException``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic_core import from_json, to_json
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cnai.core.auth import authorize
from cnai.core.errors import AlreadyExists, ApiError, BadRequest, NotFound
from cnai.tracking import registry
from cnai.tracking.api import Model, ModelVersion
from cnai.tracking.artifacts import ArtifactStore
from cnai.tracking.store import DEFAULT_GROUP, Points, Run, RunGroup, TrackingStore

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACT_PREFIXES = (
    "/api/2.0/mlflow-artifacts/artifacts",
    "/ajax-api/2.0/mlflow-artifacts/artifacts",
)
ADMIN_NAMESPACE = "default"
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
MAX_HISTORY_PAGE = 25_000

_ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "RESOURCE_ALREADY_EXISTS",
    413: "INVALID_PARAMETER_VALUE",
    422: "INVALID_PARAMETER_VALUE",
    503: "TEMPORARILY_UNAVAILABLE",
    507: "TEMPORARILY_UNAVAILABLE",
}


def _json(data: Any, status: int = 200) -> Response:
    return Response(to_json(data), status_code=status, media_type="application/json")


def _error(exc: ApiError) -> Response:
    code = _ERROR_CODES.get(exc.code, "INTERNAL_ERROR")
    return _json({"error_code": code, "message": exc.message}, exc.code)


Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


def mlflow_routes(store: TrackingStore, files: ArtifactStore, api: Any) -> list[BaseRoute]:
    """MLflow's REST endpoints over ``store`` and ``files``, authenticated by ``api``."""

    def namespace_of(request: Request) -> str:
        principal = api.principal(request)
        return str(principal.namespace or ADMIN_NAMESPACE)

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def call(request: Request) -> Response:
            try:
                ns = namespace_of(request)
                if request.method == "GET":
                    args: dict[str, Any] = dict(request.query_params)
                else:
                    raw = await request.body()
                    args = from_json(raw) if raw else {}
                    if not isinstance(args, dict):
                        raise BadRequest("body: must be a JSON object")
                return _json(await handler(ns, args))
            except ApiError as exc:
                return _error(exc)
            except ValueError as exc:
                return _error(BadRequest(f"body: not valid JSON ({exc})"))

        return call

    async def group_of(ns: str, experiment_id: Any) -> RunGroup:
        if experiment_id in (None, "", "0", 0):
            return await store.default_group(ns)
        try:
            return await store.group(ns, id=int(experiment_id))
        except (TypeError, ValueError):
            raise NotFound(f"experiment {experiment_id!r} does not exist") from None

    async def run_of(ns: str, args: dict[str, Any]) -> Run:
        run_id = args.get("run_id") or args.get("run_uuid")
        if not isinstance(run_id, str) or not run_id:
            raise BadRequest("run_id: required")
        return await store.get_run(ns, run_id)

    # -- experiments -------------------------------------------------------------------

    async def create_experiment(ns: str, args: dict[str, Any]) -> Any:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("name: an experiment needs a name")
        tags = {t["key"]: t["value"] for t in args.get("tags") or []}
        group = await store.create_group(ns, name, tags)
        return {"experiment_id": str(group.id)}

    async def get_experiment(ns: str, args: dict[str, Any]) -> Any:
        return {"experiment": experiment_json(await group_of(ns, args.get("experiment_id")))}

    async def get_experiment_by_name(ns: str, args: dict[str, Any]) -> Any:
        name = args.get("experiment_name")
        if name == DEFAULT_GROUP:
            return {"experiment": experiment_json(await store.default_group(ns))}
        try:
            group = await store.group(ns, name=str(name))
        except NotFound:
            raise NotFound(f"Could not find experiment with name '{name}'") from None
        return {"experiment": experiment_json(group)}

    async def search_experiments(ns: str, args: dict[str, Any]) -> Any:
        await store.default_group(ns)
        groups = await store.list_groups(ns)
        return {"experiments": [experiment_json(g) for g in groups]}

    # -- runs --------------------------------------------------------------------------

    async def create_run(ns: str, args: dict[str, Any]) -> Any:
        group = await group_of(ns, args.get("experiment_id"))
        tags = {t["key"]: t["value"] for t in args.get("tags") or []}
        name = args.get("run_name") or tags.get(RUN_NAME_TAG) or ""
        if args.get("user_id"):
            tags.setdefault(USER_TAG, str(args["user_id"]))
        run = await store.create_run(
            ns, group_id=group.id, name=str(name), tags=tags, start_ms=_int(args, "start_time")
        )
        if RUN_NAME_TAG not in tags:
            await store.log(ns, run.id, tags={RUN_NAME_TAG: run.name})
            run = await store.get_run(ns, run.id)
        return {"run": run_json(run)}

    async def get_run(ns: str, args: dict[str, Any]) -> Any:
        return {"run": run_json(await run_of(ns, args))}

    async def update_run(ns: str, args: dict[str, Any]) -> Any:
        run = await run_of(ns, args)
        name = args.get("run_name")
        updated = await store.update_run(
            ns, run.id, status=args.get("status"), end_ms=_int(args, "end_time"), name=name
        )
        if name:
            await store.log(ns, run.id, tags={RUN_NAME_TAG: str(name)})
        return {"run_info": run_json(updated)["info"]}

    async def delete_run(ns: str, args: dict[str, Any]) -> Any:
        run = await run_of(ns, args)
        await store.update_run(ns, run.id, status="KILLED")
        return {}

    async def log_batch(ns: str, args: dict[str, Any]) -> Any:
        run_id = args.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise BadRequest("run_id: required")
        await store.log(
            ns,
            run_id,
            metrics=metrics_of(args.get("metrics") or []),
            params={p["key"]: p["value"] for p in args.get("params") or []},
            tags={t["key"]: t["value"] for t in args.get("tags") or []},
        )
        return {}

    async def log_metric(ns: str, args: dict[str, Any]) -> Any:
        return await log_batch(
            ns, {"run_id": args.get("run_id") or args.get("run_uuid"), "metrics": [args]}
        )

    async def log_param(ns: str, args: dict[str, Any]) -> Any:
        run = await run_of(ns, args)
        await store.log(ns, run.id, params={str(args.get("key")): str(args.get("value", ""))})
        return {}

    async def set_tag(ns: str, args: dict[str, Any]) -> Any:
        run = await run_of(ns, args)
        await store.log(ns, run.id, tags={str(args.get("key")): str(args.get("value", ""))})
        return {}

    async def search_runs(ns: str, args: dict[str, Any]) -> Any:
        ids = args.get("experiment_ids") or []
        groups = [(await group_of(ns, e)).id for e in ids] if ids else None
        limit = int(args.get("max_results") or 1000)
        offset = int(args.get("page_token") or 0)
        runs = await store.list_runs(ns, group_ids=groups, limit=limit, offset=offset)
        out: dict[str, Any] = {"runs": [run_json(r) for r in runs]}
        if len(runs) == limit:
            out["next_page_token"] = str(offset + limit)
        return out

    async def metric_history(ns: str, args: dict[str, Any]) -> Any:
        run = await run_of(ns, args)
        key = args.get("metric_key")
        if not isinstance(key, str) or not key:
            raise BadRequest("metric_key: required")
        points = await store.history(ns, run.id, key)
        start = int(args.get("page_token") or 0)
        size = int(args.get("max_results") or len(points) or 1)
        end = min(len(points), start + size)
        out: dict[str, Any] = {"metrics": history_json(key, points, start, end)}
        if end < len(points):
            out["next_page_token"] = str(end)
        return out

    # -- the model registry (Model and ModelVersion resources) --------------------------

    service = api.service

    async def model_named(ns: str, args: dict[str, Any]) -> Model:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("name: the registered model's name is required")
        return await registry.find_model(service, ns, name)

    async def version_of(ns: str, args: dict[str, Any]) -> tuple[Model, ModelVersion]:
        model = await model_named(ns, args)
        try:
            number = int(args.get("version") or 0)
        except (TypeError, ValueError):
            raise BadRequest("version: must be a version number") from None
        uri = f"models:/{model.metadata.name}/{number}"
        return model, await registry.resolve(service, ns, uri)

    async def model_json(ns: str, model: Model) -> dict[str, Any]:
        versions = await registry.versions_of(service, ns, model)
        return registered_model_json(model, versions[-1:] if versions else [])

    async def create_model(ns: str, args: dict[str, Any]) -> Any:
        display = args.get("name")
        if not isinstance(display, str) or not display:
            raise BadRequest("name: a registered model needs a name")
        name = registry.resource_name(display)
        body = {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "Model",
            "metadata": {"name": name},
            "spec": {
                "displayName": "" if name == display else display,
                "description": str(args.get("description") or ""),
                "tags": {t["key"]: str(t["value"]) for t in args.get("tags") or []},
            },
        }
        try:
            created = await service.create("models", body, ns)
        except AlreadyExists:
            raise AlreadyExists(f"Registered Model (name={display}) already exists.") from None
        return {"registered_model": registered_model_json(Model.model_validate(created), [])}

    async def get_model(ns: str, args: dict[str, Any]) -> Any:
        return {"registered_model": await model_json(ns, await model_named(ns, args))}

    async def search_models(ns: str, args: dict[str, Any]) -> Any:
        listed = await service.list("models", ns)
        models = [Model.model_validate(o) for o in listed.items]
        return {"registered_models": [await model_json(ns, m) for m in models]}

    async def update_model(ns: str, args: dict[str, Any]) -> Any:
        model = await model_named(ns, args)
        if "description" in args:
            model.spec.description = str(args["description"] or "")
        updated = await service.update("models", model.to_dict(), ns, model.metadata.name)
        return {"registered_model": await model_json(ns, Model.model_validate(updated))}

    async def delete_model(ns: str, args: dict[str, Any]) -> Any:
        model = await model_named(ns, args)
        for version in await registry.versions_of(service, ns, model):
            await service.delete("modelversions", ns, version.metadata.name)
        await service.delete("models", ns, model.metadata.name)
        return {}

    async def set_model_tag(ns: str, args: dict[str, Any]) -> Any:
        model = await model_named(ns, args)
        model.spec.tags[str(args.get("key"))] = str(args.get("value", ""))
        await service.update("models", model.to_dict(), ns, model.metadata.name)
        return {}

    async def create_version(ns: str, args: dict[str, Any]) -> Any:
        model = await model_named(ns, args)
        source = args.get("source")
        if not isinstance(source, str) or not source:
            raise BadRequest("source: the URI of the version's artifacts is required")
        spec = {
            "source": source,
            "runId": str(args.get("run_id") or ""),
            "description": str(args.get("description") or ""),
            "tags": {t["key"]: str(t["value"]) for t in args.get("tags") or []},
            "format": "mlflow",
        }
        version = await registry.create_version(service, ns, model, spec)
        return {"model_version": model_version_json(model, version)}

    async def get_version(ns: str, args: dict[str, Any]) -> Any:
        model, version = await version_of(ns, args)
        return {"model_version": model_version_json(model, version)}

    async def download_uri(ns: str, args: dict[str, Any]) -> Any:
        _, version = await version_of(ns, args)
        return {"artifact_uri": version.spec.source}

    async def search_versions(ns: str, args: dict[str, Any]) -> Any:
        wanted = re.search(r"name\s*=\s*'([^']*)'", str(args.get("filter") or ""))
        listed = await service.list("models", ns)
        models = [Model.model_validate(o) for o in listed.items]
        if wanted is not None:
            models = [m for m in models if wanted[1] in (m.display, m.metadata.name)]
        out = []
        for model in models:
            for version in await registry.versions_of(service, ns, model):
                out.append(model_version_json(model, version))
        return {"model_versions": out}

    async def latest_versions(ns: str, args: dict[str, Any]) -> Any:
        model = await model_named(ns, args)
        versions = await registry.versions_of(service, ns, model)
        return {"model_versions": [model_version_json(model, v) for v in versions[-1:]]}

    async def set_version_tag(ns: str, args: dict[str, Any]) -> Any:
        _, version = await version_of(ns, args)
        version.spec.tags[str(args.get("key"))] = str(args.get("value", ""))
        await service.update("modelversions", version.to_dict(), ns, version.metadata.name)
        return {}

    async def alias(ns: str, args: dict[str, Any]) -> Any:
        model = await model_named(ns, args)
        name = str(args.get("alias") or "")
        if "version" in args:  # set
            _, version = await version_of(ns, args)
            model.spec.aliases[name] = version.spec.version
            await service.update("models", model.to_dict(), ns, model.metadata.name)
            return {}
        if name not in model.spec.aliases:
            raise NotFound(f"Registered model alias {name} not found.")
        return {"model_version": model_version_json(
            model, await registry.resolve(service, ns, f"models:/{model.metadata.name}@{name}")
        )}  # fmt: skip

    async def delete_alias(ns: str, args: dict[str, Any]) -> Any:
        model = await model_named(ns, args)
        model.spec.aliases.pop(str(args.get("alias") or ""), None)
        await service.update("models", model.to_dict(), ns, model.metadata.name)
        return {}

    async def alias_route(request: Request) -> Response:
        handler = delete_alias if request.method == "DELETE" else alias
        return await endpoint(handler)(request)

    async def search_logged_models(ns: str, args: dict[str, Any]) -> Any:
        # MLflow 3's "logged models" are not kept by cnai (its registry is Model and
        # ModelVersion); the client searches them when listing a run's sub-directory.
        return {"models": []}

    handlers: dict[str, tuple[Handler, list[str]]] = {
        "/logged-models/search": (search_logged_models, ["POST"]),
        "/registered-models/create": (create_model, ["POST"]),
        "/registered-models/get": (get_model, ["GET"]),
        "/registered-models/search": (search_models, ["GET", "POST"]),
        "/registered-models/update": (update_model, ["PATCH", "POST"]),
        "/registered-models/delete": (delete_model, ["DELETE"]),
        "/registered-models/set-tag": (set_model_tag, ["POST"]),
        "/registered-models/get-latest-versions": (latest_versions, ["GET", "POST"]),
        "/model-versions/create": (create_version, ["POST"]),
        "/model-versions/get": (get_version, ["GET"]),
        "/model-versions/search": (search_versions, ["GET", "POST"]),
        "/model-versions/set-tag": (set_version_tag, ["POST"]),
        "/model-versions/get-download-uri": (download_uri, ["GET"]),
        "/experiments/create": (create_experiment, ["POST"]),
        "/experiments/get": (get_experiment, ["GET"]),
        "/experiments/get-by-name": (get_experiment_by_name, ["GET"]),
        "/experiments/search": (search_experiments, ["GET", "POST"]),
        "/runs/create": (create_run, ["POST"]),
        "/runs/get": (get_run, ["GET"]),
        "/runs/update": (update_run, ["POST"]),
        "/runs/delete": (delete_run, ["POST"]),
        "/runs/log-batch": (log_batch, ["POST"]),
        "/runs/log-metric": (log_metric, ["POST"]),
        "/runs/log-parameter": (log_param, ["POST"]),
        "/runs/set-tag": (set_tag, ["POST"]),
        "/runs/search": (search_runs, ["POST"]),
        "/metrics/get-history": (metric_history, ["GET"]),
    }
    # -- the artifact proxy: mlflow-artifacts:/NAMESPACE/RUN_ID/artifacts/PATH ---------

    def artifact_target(request: Request, path: str, verb: str) -> tuple[str, str, str]:
        parts = path.strip("/").split("/", 3)
        if len(parts) < 3 or parts[2] != "artifacts":
            raise NotFound(f"artifact path {path!r}: not NAMESPACE/RUN_ID/artifacts/...")
        ns, run_id = parts[0], parts[1]
        authorize(api.principal(request), namespace=ns, namespaced=True, plural="runs", verb=verb)
        return ns, run_id, parts[3] if len(parts) == 4 else ""

    async def artifact(request: Request) -> Response:
        try:
            path = request.path_params["path"]
            if request.method == "PUT":
                ns, run_id, rel = artifact_target(request, path, "update")
                await store.get_run(ns, run_id)
                await files.put(ns, run_id, rel, request.stream())
                return _json({})
            ns, run_id, rel = artifact_target(request, path, "get")
            await store.get_run(ns, run_id)
            if files.local:
                return FileResponse(files.file(ns, run_id, rel))
            if not files.exists_file(ns, run_id, rel):
                raise NotFound(f"artifact {rel!r} not found in run {run_id}")
            return StreamingResponse(files.read(ns, run_id, rel))
        except ApiError as exc:
            return _error(exc)

    async def list_artifacts(request: Request) -> Response:
        try:
            ns, run_id, rel = artifact_target(request, request.query_params.get("path", ""), "get")
            await store.get_run(ns, run_id)
            entries = files.list(ns, run_id, rel)
        except ApiError as exc:
            return _error(exc)
        base = f"{rel.strip('/')}/" if rel.strip("/") else ""
        return _json(
            {
                "files": [
                    {"path": e.path.removeprefix(base), "is_dir": e.is_dir}
                    | ({} if e.is_dir else {"file_size": e.size})
                    for e in entries
                ]
            }
        )

    routes: list[BaseRoute] = [
        Route(prefix + path, endpoint(handler), methods=methods)
        for prefix in PREFIXES
        for path, (handler, methods) in handlers.items()
    ]
    routes += [
        Route(prefix + "/registered-models/alias", alias_route, methods=["GET", "POST", "DELETE"])
        for prefix in PREFIXES
    ]
    for prefix in ARTIFACT_PREFIXES:
        routes.append(Route(prefix, list_artifacts, methods=["GET"]))
        routes.append(Route(prefix + "/{path:path}", artifact, methods=["GET", "PUT"]))
    return routes


# -- MLflow's JSON ---------------------------------------------------------------------


def _int(args: dict[str, Any], field: str) -> int | None:
    value = args.get(field)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{field}: must be an integer (milliseconds)") from None


def metrics_of(items: list[dict[str, Any]]) -> dict[str, Points]:
    """MLflow's list of ``{key, value, timestamp, step}`` as points per key."""
    columns: dict[str, tuple[list[Any], list[Any], list[Any]]] = defaultdict(lambda: ([], [], []))
    for i, m in enumerate(items):
        if not isinstance(m, dict) or "key" not in m or "value" not in m:
            raise BadRequest(f"metrics[{i}]: needs a key and a value")
        steps, values, stamps = columns[str(m["key"])]
        steps.append(m.get("step") or 0)
        values.append(_number(m["value"]))
        stamps.append(m.get("timestamp") or 0)
    return {k: Points.of(k, s, v, t) for k, (s, v, t) in columns.items()}


def _number(value: Any) -> float:
    # The client writes NaN and infinities as strings; they are refused by Points.of.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise BadRequest(f"metric value {value!r}: not a number") from None
    return float(value)


def experiment_json(group: RunGroup) -> dict[str, Any]:
    return {
        "experiment_id": str(group.id),
        "name": group.name,
        "artifact_location": "",
        "lifecycle_stage": group.lifecycle,
        "creation_time": group.created_ms,
        "last_update_time": group.created_ms,
        "tags": [{"key": k, "value": v} for k, v in group.tags.items()],
    }


def run_json(run: Run) -> dict[str, Any]:
    info = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": str(run.group_id),
        "user_id": run.tags.get(USER_TAG, ""),
        "status": run.status,
        "start_time": run.start_ms,
        # Served by the artifact proxy below, which the client finds from this URI.
        "artifact_uri": f"mlflow-artifacts:/{run.namespace}/{run.id}/artifacts",
        "lifecycle_stage": run.lifecycle,
    }
    if run.end_ms is not None:
        info["end_time"] = run.end_ms
    data = {
        "metrics": [
            {"key": k, "value": m.value, "timestamp": m.timestamp, "step": m.step}
            for k, m in run.latest.items()
        ],
        "params": [{"key": k, "value": v} for k, v in run.params.items()],
        "tags": [{"key": k, "value": v} for k, v in run.tags.items()],
    }
    return {"info": info, "data": data, "inputs": {}}


def _ms(when: datetime | None) -> int:
    return int(when.timestamp() * 1000) if when is not None else 0


def registered_model_json(model: Model, latest: list[ModelVersion]) -> dict[str, Any]:
    created = _ms(model.metadata.creation_timestamp)
    return {
        "name": model.display,
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "description": model.spec.description,
        "latest_versions": [model_version_json(model, v) for v in latest],
        "tags": [{"key": k, "value": v} for k, v in model.spec.tags.items()],
        "aliases": [{"alias": a, "version": str(n)} for a, n in model.spec.aliases.items()],
    }


def model_version_json(model: Model, version: ModelVersion) -> dict[str, Any]:
    created = _ms(version.metadata.creation_timestamp)
    number = version.spec.version
    return {
        "name": model.display,
        "version": str(number),
        "creation_timestamp": created,
        "last_updated_timestamp": created,
        "description": version.spec.description,
        "source": version.spec.source,
        "run_id": version.spec.run_id,
        "status": "READY",
        "tags": [{"key": k, "value": v} for k, v in version.spec.tags.items()],
        "aliases": [a for a, n in model.spec.aliases.items() if n == number],
    }


def history_json(key: str, points: Points, start: int, end: int) -> list[dict[str, Any]]:
    values = points.values[start:end].tolist()
    steps = points.steps[start:end].tolist()
    stamps = points.timestamps[start:end].tolist()
    return [
        {"key": key, "value": v, "timestamp": t, "step": s}
        for v, t, s in zip(values, stamps, steps, strict=True)
    ]
