"""The kernel's workload kinds: Pod (the unit a runtime runs) and Node (where it runs).

A Pod here is one process (a single container in Kubernetes terms): command, args,
env, working directory, resources. Locally it runs with the platform's Python
environment in ``workingDir``; ``image`` is what runs on the Kubernetes engine.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, field_validator

from cnai.core.meta import Condition, Resource, WireModel
from cnai.core.quantity import parse_quantity

# Resource names a pod may request; keep in sync with the runtimes' capacity reports.
RESOURCE_NAMES = ("cpu", "memory", "gpu")


class SecretKeySelector(WireModel):
    """One key of a Secret in the pod's namespace."""

    name: str = Field(description="Name of the Secret.")
    key: str = Field(description="Key within the Secret's data.")
    optional: bool = Field(default=False, description="If true, a missing key is no error.")


class EnvVarSource(WireModel):
    """Where an environment variable's value comes from."""

    secret_key_ref: SecretKeySelector | None = Field(
        default=None, description="A key of a Secret, decoded."
    )


class EnvVar(WireModel):
    """An environment variable: a literal value, or a reference."""

    name: str = Field(description="Variable name.")
    value: str | None = Field(default=None, description="Literal value.")
    value_from: EnvVarSource | None = Field(default=None, description="Value by reference.")


def _check_quantities(resources: dict[str, str | int]) -> dict[str, str | int]:
    for name, value in resources.items():
        if name not in RESOURCE_NAMES:
            raise ValueError(f"unknown resource {name!r}; use one of {', '.join(RESOURCE_NAMES)}")
        try:
            parse_quantity(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return resources


class ResourceRequirements(WireModel):
    """What a pod needs (requests, used for placement) and may use at most (limits)."""

    requests: dict[str, str | int] = Field(
        default_factory=dict, description="cpu (cores, e.g. 500m), memory (e.g. 512Mi), gpu."
    )
    limits: dict[str, str | int] = Field(
        default_factory=dict, description="memory is enforced: exceeding it is OOMKilled."
    )

    _requests_ok = field_validator("requests")(_check_quantities)
    _limits_ok = field_validator("limits")(_check_quantities)


class RestartPolicy(StrEnum):
    """What the runtime does when the process exits. Jobs use Never."""

    NEVER = "Never"


class PodSpec(WireModel):
    """What to run."""

    command: list[str] = Field(default_factory=list, description="Executable and its arguments.")
    args: list[str] = Field(default_factory=list, description="More arguments after command.")
    env: list[EnvVar] = Field(default_factory=list, description="Environment variables.")
    working_dir: str = Field(default="", description="Working directory (a local path).")
    image: str = Field(default="", description="Container image, used by the Kubernetes engine.")
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements, description="Requests and limits."
    )
    restart_policy: RestartPolicy = Field(
        default=RestartPolicy.NEVER, description="Never: a finished pod stays finished."
    )
    termination_grace_period_seconds: int = Field(
        default=30, ge=0, description="Seconds between SIGTERM and SIGKILL when stopping."
    )
    node_name: str = Field(default="", description="The node this pod is bound to.")


class PodPhase(StrEnum):
    """Pod lifecycle. Pending -> Running -> Succeeded | Failed; Pending -> Failed.

    Succeeded and Failed are terminal. Unknown means the runtime lost track of it.
    """

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    @property
    def terminal(self) -> bool:
        return self in (PodPhase.SUCCEEDED, PodPhase.FAILED)


class PodStatus(WireModel):
    """What the runtime observed."""

    phase: PodPhase = Field(default=PodPhase.PENDING, description="Lifecycle phase.")
    reason: str = Field(default="", description="Why, e.g. Completed, Error, OOMKilled.")
    message: str = Field(default="", description="Human-readable detail.")
    exit_code: int | None = Field(default=None, description="Process exit code once it ended.")
    start_time: datetime | None = Field(default=None, description="When the process started.")
    finish_time: datetime | None = Field(default=None, description="When it ended.")
    node_name: str = Field(default="", description="Where it runs or ran.")
    pod_ip: str = Field(
        default="",
        # Kubernetes' spelling; the camelCase generator would give podIp.
        alias="podIP",
        description="Where the platform reaches its process: in a cluster, the Kubernetes "
        "Pod's IP; empty on one machine (loopback).",
    )
    conditions: list[Condition] = Field(default_factory=list, description="Observations.")


class Pod(Resource):
    """One process the runtime runs and supervises."""

    KIND: ClassVar[str] = "Pod"
    PLURAL: ClassVar[str] = "pods"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("po",)

    spec: PodSpec = Field(default_factory=PodSpec, description="What to run.")
    status: PodStatus = Field(default_factory=PodStatus, description="What happened.")


class GPUDevice(WireModel):
    """One GPU of a node."""

    index: int = Field(description="Device index (CUDA_VISIBLE_DEVICES uses it).")
    name: str = Field(default="", description="Model, e.g. NVIDIA H200.")
    uuid: str = Field(default="", description="Device UUID.")
    memory_bytes: int = Field(default=0, description="Total memory.")


class NodeSpec(WireModel):
    """Desired state of a node."""

    unschedulable: bool = Field(default=False, description="If true, no new pods start here.")


class NodeStatus(WireModel):
    """What the runtime reports about a machine."""

    capacity: dict[str, str] = Field(default_factory=dict, description="cpu, memory, gpu.")
    allocatable: dict[str, str] = Field(default_factory=dict, description="What pods may use.")
    gpus: list[GPUDevice] = Field(default_factory=list, description="GPUs found.")
    runtime: str = Field(default="", description="The runtime that reports this node.")
    memory_enforcement: str = Field(
        default="", description="How memory limits are enforced: cgroup-v2, cgroup-v1 or rss."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Ready and others.")


class Node(Resource):
    """A machine pods run on, as the runtime sees it."""

    KIND: ClassVar[str] = "Node"
    PLURAL: ClassVar[str] = "nodes"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("no",)
    NAMESPACED: ClassVar[bool] = False

    spec: NodeSpec = Field(default_factory=NodeSpec, description="Desired state.")
    status: NodeStatus = Field(default_factory=NodeStatus, description="Capacity and health.")
