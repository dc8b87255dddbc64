"""The registry kinds: ``Model`` and ``ModelVersion`` (MLflow's model registry, as
resources).

A ``Model`` names a model and holds its aliases (``champion: 3``). A ``ModelVersion``
(named ``MODEL-vN``) is one immutable version: where its artifacts are, the run that
produced it, its format, input/output signature and metrics. ``models:/NAME/VERSION``
and ``models:/NAME@ALIAS`` resolve to a ModelVersion (:mod:`cnai.tracking.registry`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from cnai.core.meta import Resource, WireModel


class ModelSpec(WireModel):
    """A registered model."""

    display_name: str = Field(
        default="",
        description="The name as users wrote it, when it is not a valid resource name "
        "(MLflow allows spaces and capitals); empty means the resource name.",
    )
    description: str = Field(default="", description="What the model is.")
    tags: dict[str, str] = Field(default_factory=dict, description="Free-form tags.")
    aliases: dict[str, int] = Field(
        default_factory=dict, description="Alias -> version number, e.g. champion: 3."
    )


class ModelStatus(WireModel):
    """What the registry observed."""

    latest_version: int = Field(default=0, description="Highest version number registered.")


class Model(Resource):
    """A model in the registry, with its aliases; its versions are ModelVersions."""

    KIND: ClassVar[str] = "Model"
    PLURAL: ClassVar[str] = "models"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("mdl",)

    spec: ModelSpec = Field(default_factory=ModelSpec, description="Name and aliases.")
    status: ModelStatus = Field(default_factory=ModelStatus, description="Latest version.")

    @property
    def display(self) -> str:
        return self.spec.display_name or self.metadata.name


class ModelFormat(StrEnum):
    """How a version's artifacts are to be loaded."""

    SKLEARN = "sklearn"
    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"
    CUSTOM = "custom"  # a Python class of the user's
    MLFLOW = "mlflow"  # an MLflow model directory (MLmodel file)


class TensorSpec(WireModel):
    """One input or output tensor (Open Inference Protocol datatypes)."""

    name: str = Field(default="", description="Tensor name.")
    datatype: str = Field(default="FP32", description="e.g. FP32, INT64, BYTES.")
    shape: list[int] = Field(default_factory=list, description="-1 for a variable dimension.")


class Signature(WireModel):
    """What a model takes and returns."""

    inputs: list[TensorSpec] = Field(default_factory=list, description="Input tensors.")
    outputs: list[TensorSpec] = Field(default_factory=list, description="Output tensors.")


class ModelVersionSpec(WireModel):
    """One version of a model: immutable once created, but for description and tags."""

    model: str = Field(description="The Model's resource name.")
    version: int = Field(description="Version number, from 1.")
    source: str = Field(description="Where the artifacts are: a file://, s3://, ... URI.")
    run_id: str = Field(default="", description="The tracking run that produced it.")
    format: ModelFormat = Field(default=ModelFormat.CUSTOM, description="How to load it.")
    signature: Signature | None = Field(default=None, description="Inputs and outputs.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Evaluation metrics.")
    description: str = Field(default="", description="What changed in this version.")
    tags: dict[str, str] = Field(default_factory=dict, description="Free-form tags.")


class ModelVersion(Resource):
    """A version of a Model, named ``MODEL-vN``."""

    KIND: ClassVar[str] = "ModelVersion"
    PLURAL: ClassVar[str] = "modelversions"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("mv",)

    spec: ModelVersionSpec = Field(description="Source, run and signature.")


def version_name(model: str, version: int) -> str:
    return f"{model}-v{version}"
