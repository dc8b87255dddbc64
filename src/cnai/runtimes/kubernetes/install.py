"""`cnai k8s install`: server-side apply of the install manifests with the official client.

Server-side apply (``PATCH`` with ``application/apply-patch+yaml``) makes install
idempotent and an upgrade the same command: fields cnai owns are set, fields others
own (an admin's extra labels, a replica count set by hand) are left alone, and
CRDs are too large for client-side apply's last-applied annotation anyway. CRDs are
applied first and waited on until the API server serves them (``Established``), so the
operator never starts against kinds that do not exist yet.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

FIELD_MANAGER = "cnai"
ESTABLISH_TIMEOUT_S = 60.0

# (apiVersion, kind) -> (plural, namespaced): the kinds the install manifests contain.
KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("ray.io/v1", "RayCluster"): ("rayclusters", True),  # KubeRay's, with --runtime ray
}


class InstallError(Exception):
    """The cluster refused an object or never served a CRD; the message says which."""


@dataclass(frozen=True)
class Applied:
    """One applied object, as kubectl names it (``deployment.apps/cnai``)."""

    kind: str
    group: str
    name: str

    def __str__(self) -> str:
        qualified = f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()
        return f"{qualified}/{self.name}"


def object_path(obj: dict[str, Any]) -> str:
    """The REST path of ``obj`` (for the kinds in :data:`KINDS`)."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    try:
        plural, namespaced = KINDS[(api_version, kind)]
    except KeyError:
        raise InstallError(f"{kind} ({api_version}) is not a kind cnai installs") from None
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    meta = obj["metadata"]
    if namespaced:
        return f"{base}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
    return f"{base}/{plural}/{meta['name']}"


def load_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ApiClient of the official client, for the kubeconfig context (or in-cluster)."""
    import os

    try:
        from kubernetes import config
    except ImportError:
        raise InstallError(
            "the Kubernetes engine needs the official client: pip install 'cnai[kubernetes]'"
        ) from None

    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        from kubernetes import client

        return client.ApiClient()
    try:
        return config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context
        )
    except config.ConfigException as exc:
        raise InstallError(f"cannot load kubeconfig: {exc}") from None


def apply(
    api_client: Any,
    objects: Iterable[dict[str, Any]],
    *,
    dry_run: bool = False,
    on_applied: Callable[[Applied], None] | None = None,
    establish_timeout_s: float = ESTABLISH_TIMEOUT_S,
) -> list[Applied]:
    """Server-side apply each object in order, waiting for CRDs to be Established before
    the first object that is not a CRD."""
    done: list[Applied] = []
    pending_crds: list[str] = []
    for obj in objects:
        is_crd = obj["kind"] == "CustomResourceDefinition"
        if pending_crds and not is_crd and not dry_run:
            wait_established(api_client, pending_crds, establish_timeout_s)
            pending_crds = []
        _request(api_client, "PATCH", object_path(obj), obj, dry_run=dry_run)
        group = obj["apiVersion"].rpartition("/")[0]
        applied = Applied(obj["kind"], group, obj["metadata"]["name"])
        done.append(applied)
        if on_applied is not None:
            on_applied(applied)
        if is_crd:
            pending_crds.append(obj["metadata"]["name"])
    if pending_crds and not dry_run:
        wait_established(api_client, pending_crds, establish_timeout_s)
    return done


def wait_established(api_client: Any, names: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(names)
    while waiting:
        crd = _request(
            api_client,
            "GET",
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{waiting[0]}",
        )
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            raise InstallError(
                f"CRD {waiting[0]} was not Established within {timeout_s:.0f}s; "
                f"see `kubectl describe crd {waiting[0]}`"
            )
        time.sleep(0.5)


def _request(
    api_client: Any, method: str, path: str, body: Any = None, *, dry_run: bool = False
) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    query: list[tuple[str, str]] = []
    headers = {"Accept": "application/json"}
    if method == "PATCH":
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        headers["Content-Type"] = "application/apply-patch+yaml"
    if dry_run:
        query.append(("dryRun", "All"))
    params = api_client.param_serialize(
        method=method,
        resource_path=path,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    try:
        response = api_client.call_api(*params)
        response.read()
    except ApiException as exc:
        raise InstallError(f"{method} {path}: {_status_message(exc)}") from None
    except HTTPError as exc:
        host = api_client.configuration.host
        raise InstallError(f"cannot reach the Kubernetes API at {host}: {exc}") from None
    if not 200 <= response.status < 300:
        raise InstallError(f"{method} {path}: HTTP {response.status}: {response.data!r}")
    data = json.loads(response.data or b"{}")
    return data if isinstance(data, dict) else {}


def _status_message(exc: Any) -> str:
    try:
        status = json.loads(exc.body)
        return f"{status.get('reason', exc.reason)}: {status.get('message', '')}"
    except (TypeError, ValueError):
        return f"HTTP {exc.status} {exc.reason}"
