"""Operator mode: the parts `cnai up --store kubernetes --runtime kubernetes` runs with.

In a cluster cnai's server is an ordinary Deployment. Every replica serves the API (the
store is the Kubernetes API, so they all see the same objects); a Lease elects the one
replica that runs the controllers, the scheduler and the runtime's pod loop. The admin
token is kept in a Secret of the operator's namespace, so every replica (and every
restart) accepts the same one, and an admin reads it with kubectl.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from cnai.core.auth import TOKENS
from cnai.core.config import DEFAULT_PORT
from cnai.core.registry import Registry
from cnai.runtimes.kubernetes.api import ApiResource, KubeApi
from cnai.runtimes.kubernetes.leader import LeaderElector
from cnai.runtimes.kubernetes.render import Admission, RenderOptions, SharedGPU
from cnai.runtimes.kubernetes.runtime import FlavorLabels, KubernetesRuntime
from cnai.runtimes.kubernetes.store import KubernetesStore, resources_for
from cnai.version import API_GROUP, API_VERSION

# API tokens (digests only, never a token) as cluster-scoped cnai.io objects.
TOKEN_RESOURCE = ApiResource(API_GROUP, API_VERSION, TOKENS, "Token", namespaced=False)
LEASE_NAME = "cnai-controller-manager"
ADMIN_SECRET = "cnai-admin-token"  # noqa: S105 - the Secret's name
ADMIN_SECRET_KEY = "token"  # noqa: S105 - the key's name in that Secret


@dataclass(frozen=True)
class ClusterOptions:
    """Where the cluster is and how cnai's workloads run in it."""

    kubeconfig: str | None = None
    context: str | None = None
    # The operator's own namespace (its Lease and admin-token Secret live there).
    namespace: str = ""
    identity: str = ""  # this replica, for the Lease (the pod's name)
    admission: str = "cnai"
    queue: str = ""  # Kueue's LocalQueue with admission kueue
    shared_gpu_resource: str = ""
    default_image: str = ""  # for pods that name no image (the operator's own)

    @classmethod
    def from_environment(cls, **given: str | None) -> ClusterOptions:
        """Options with the downward API's POD_NAMESPACE and POD_NAME as defaults."""
        fields = {k: v for k, v in given.items() if v}
        fields.setdefault("namespace", os.environ.get("POD_NAMESPACE") or "cnai-system")
        fields.setdefault("identity", os.environ.get("POD_NAME") or socket.gethostname())
        fields.setdefault("default_image", os.environ.get("CNAI_DEFAULT_IMAGE", ""))
        return cls(**fields)

    @property
    def server_url(self) -> str:
        """Where workloads in the cluster reach cnai's API: its Service."""
        return f"http://cnai.{self.namespace}.svc:{DEFAULT_PORT}"

    def render_options(self) -> RenderOptions:
        return RenderOptions(
            default_image=self.default_image,
            admission=Admission(self.admission),
            queue=self.queue,
            shared_gpu=SharedGPU.named(self.shared_gpu_resource)
            if self.shared_gpu_resource
            else None,
        )


def connect(options: ClusterOptions) -> KubeApi:
    return KubeApi.load(options.kubeconfig, options.context)


def open_store(api: KubeApi, registry: Registry) -> KubernetesStore:
    """The store over ``api``: cnai's kinds, plus the internal token records."""
    return KubernetesStore(api, {**resources_for(registry), TOKENS: TOKEN_RESOURCE})


def open_runtime(
    api: KubeApi, options: ClusterOptions, flavor_labels: FlavorLabels | None = None
) -> KubernetesRuntime:
    return KubernetesRuntime(api, options.render_options(), flavor_labels=flavor_labels)


def elector(api: KubeApi, options: ClusterOptions) -> LeaderElector:
    return LeaderElector(api, options.namespace, LEASE_NAME, options.identity)
