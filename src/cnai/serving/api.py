"""The ``InferenceService`` kind: a model served over HTTP, scaled on its traffic.

The shape follows KServe's InferenceService in cnai's conventions: a ``predictor`` (the
model as ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a URI, its format and the
resources of each replica), ``minReplicas`` (0 allowed: scale to zero) and
``maxReplicas``, the metric the autoscaler follows and its target per replica,
``canaryTrafficPercent`` for a rollout, adaptive ``batching``, and a queue and priority
like every workload. Each change to what a replica runs (the predictor or batching)
makes a new revision; status lists the revisions with their traffic and replicas, and
the one URL that stays the same across them.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from cnai.core.meta import Condition, Resource, WireModel
from cnai.core.pods import EnvVar, ResourceRequirements
from cnai.serving.autoscaler import Metric as ScalingMetric

SERVICE_LABEL = "cnai.io/inferenceservice-name"
REVISION_LABEL = "cnai.io/revision-name"

# models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/latest (MLflow's model URIs,
# as cnai.tracking.registry.resolve reads them)
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+|latest))$")


class ModelFormat(StrEnum):
    SKLEARN = "sklearn"
    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"
    CUSTOM = "custom"


class Predictor(WireModel):
    """What each replica serves."""

    model: str = Field(
        description="models:/NAME@ALIAS, models:/NAME/VERSION, models:/NAME/latest (the "
        "registry), or a file path or file:// URI of the model."
    )
    format: ModelFormat | None = Field(
        default=None,
        description="sklearn, onnx, torchscript or custom; default: the registered version's.",
    )
    class_name: str = Field(
        default="",
        alias="class",
        description="module:Class of a custom model (with load() and predict()).",
    )
    image: str = Field(default="", description="Container image (the Kubernetes engine runs it).")
    env: list[EnvVar] = Field(default_factory=list, description="Environment variables.")
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements, description="Each replica's requests and limits."
    )

    @field_validator("model")
    @classmethod
    def _model_uri(cls, model: str) -> str:
        if not model.strip():
            raise ValueError("must not be empty")
        if model.startswith("models:") and not MODEL_URI.match(model):
            raise ValueError(
                f"{model!r} is not models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/latest"
            )
        return model

    @model_validator(mode="after")
    def _custom_has_a_class(self) -> Predictor:
        if self.format is ModelFormat.CUSTOM and not self.class_name:
            raise ValueError("class: a custom model needs module:Class")
        if self.class_name and ":" not in self.class_name:
            raise ValueError("class: must be module:Class")
        return self


class Scaling(WireModel):
    """What the autoscaler follows (Knative's KPA): requests in flight or per second, per
    replica."""

    metric: ScalingMetric = Field(
        default=ScalingMetric.CONCURRENCY, description="concurrency or rps."
    )
    target: float = Field(default=10.0, gt=0, description="The metric's target per replica.")
    stable_window_seconds: float = Field(
        default=60.0,
        ge=10,
        le=3600,
        description="The window the metric is averaged over (Knative's autoscaling window); "
        "the panic window is a tenth of it (at least 1 s).",
    )
    scale_to_zero_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long after the stable window without traffic before the last "
        "replica goes (minReplicas 0).",
    )


class Batching(WireModel):
    """Adaptive batching in each replica: concurrent requests merged into one predict."""

    max_batch_size: int = Field(default=1, ge=1, le=4096, description="Rows per predict call.")
    max_latency_ms: float = Field(
        default=5.0, ge=0, le=10_000, description="How long a request waits for others."
    )


class InferenceServiceSpec(WireModel):
    """A model to serve and how to scale it."""

    predictor: Predictor = Field(description="What each replica serves.")
    min_replicas: int = Field(default=1, ge=0, description="Replicas kept (0: scale to zero).")
    max_replicas: int = Field(default=1, ge=1, description="The most replicas.")
    scaling: Scaling = Field(default_factory=Scaling, description="What the autoscaler follows.")
    canary_traffic_percent: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Traffic to the latest revision while the previous one keeps the rest; "
        "unset: the latest takes all traffic once it is ready.",
    )
    batching: Batching = Field(default_factory=Batching, description="Adaptive batching.")
    queue: str = Field(default="", description="The LocalQueue its replicas are admitted from.")
    priority_class_name: str = Field(default="", description="Its replicas' PriorityClass.")
    request_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How long the gateway holds a request (while a replica starts too).",
    )

    @model_validator(mode="after")
    def _replicas(self) -> InferenceServiceSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas "
                f"({self.max_replicas})"
            )
        return self


class RevisionStatus(WireModel):
    """One revision: what it serves, its share of traffic and its replicas."""

    name: str = Field(description="NAME-00001, NAME-00002, ...")
    model: str = Field(default="", description="The model it serves, resolved to a version.")
    traffic_percent: int = Field(default=0, description="Its share of the requests.")
    replicas: int = Field(default=0, description="Replicas wanted.")
    ready_replicas: int = Field(default=0, description="Replicas answering.")
    template_hash: str = Field(default="", description="Names what its replicas run.")
    template: dict[str, Any] = Field(
        default_factory=dict,
        description="What its replicas run: the resolved model path, format, signature, "
        "batching and environment.",
    )


class InferenceServicePhase(StrEnum):
    PENDING = "Pending"  # no revision is ready yet
    READY = "Ready"
    FAILED = "Failed"  # the model cannot be resolved or loaded


class InferenceServiceStatus(WireModel):
    """Where the service answers and how its revisions stand."""

    phase: InferenceServicePhase = Field(
        default=InferenceServicePhase.PENDING, description="Pending, Ready or Failed."
    )
    url: str = Field(default="", description="The service's stable URL.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready.")
    revisions: list[RevisionStatus] = Field(
        default_factory=list, description="Revisions with traffic or replicas, oldest first."
    )
    latest_revision: str = Field(default="", description="The newest revision.")
    latest_ready_revision: str = Field(default="", description="The newest ready revision.")
    replicas_text: str = Field(default="", description="Ready over wanted replicas, e.g. 2/3.")
    reason: str = Field(default="", description="Why it is not ready.")
    message: str = Field(default="", description="The same, in words.")
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status was computed for."
    )
    last_transition_time: datetime | None = Field(
        default=None, description="When the phase last changed."
    )


class InferenceService(Resource):
    """A model served over HTTP at one stable URL, scaled on its traffic."""

    KIND: ClassVar[str] = "InferenceService"
    PLURAL: ClassVar[str] = "inferenceservices"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("isvc",)

    spec: InferenceServiceSpec = Field(description="What to serve and how to scale it.")
    status: InferenceServiceStatus = Field(
        default_factory=InferenceServiceStatus, description="What is served."
    )
