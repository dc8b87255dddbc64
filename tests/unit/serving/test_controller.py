"""The InferenceService controller's pure parts: what a replica runs, and naming."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cnai.core.clock import FakeClock
from cnai.core.meta import ObjectMeta
from cnai.core.pods import Pod, PodSpec
from cnai.serving.api import InferenceService, RevisionStatus
from cnai.serving.controller import (
    InferenceServiceReconciler,
    ModelUnavailable,
    _free_index,
    _local_path,
    _next_number,
)
from cnai.serving.revisions import template_hash
from cnai.serving.state import ServingState


def isvc(model: str, **spec: Any) -> InferenceService:
    return InferenceService.model_validate(
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": "svc", "namespace": "default"},
            "spec": {"predictor": {"model": model}, **spec},
        }
    )


def template(service: InferenceService) -> dict[str, Any]:
    none: Any = None  # a path model touches neither the store nor events
    reconciler = InferenceServiceReconciler(none, FakeClock(), none, ServingState())
    return asyncio.run(reconciler._template(service))


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("m.joblib", "sklearn"), ("m.onnx", "onnx"), ("m.pt", "torchscript"), ("m.pkl", "sklearn")],
)
def test_a_path_model_gets_its_format_from_its_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    (tmp_path / name).write_bytes(b"x")
    got = template(isvc(str(tmp_path / name)))
    assert (got["path"], got["format"], got["ref"]) == (
        str(tmp_path / name),
        fmt,
        str(tmp_path / name),
    )


def test_a_missing_model_file_is_unavailable_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        template(isvc(str(tmp_path / "nowhere.joblib")))
    with pytest.raises(ModelUnavailable, match="only local"):
        template(isvc("s3://bucket/m.joblib"))


def test_what_a_replica_runs_changes_with_the_predictor_and_batching_only(tmp_path: Path) -> None:
    model = tmp_path / "m.joblib"
    model.write_bytes(b"x")
    base = template_hash(template(isvc(str(model))))
    scaled = template_hash(template(isvc(str(model), maxReplicas=5, canaryTrafficPercent=10)))
    batched = template_hash(template(isvc(str(model), batching={"maxBatchSize": 8})))
    assert scaled == base  # replicas and traffic make no new revision
    assert batched != base


def test_revision_numbers_and_replica_indexes() -> None:
    assert _next_number([]) == 1
    assert _next_number([RevisionStatus(name="svc-00007")]) == 8
    pods = [
        Pod(metadata=ObjectMeta(name=f"svc-00001-{i}"), spec=PodSpec(command=["x"])) for i in (0, 2)
    ]
    assert _free_index(pods) == 1
    assert _free_index([]) == 0


def test_model_uris_to_local_paths() -> None:
    assert _local_path("file:///srv/m.onnx") == "/srv/m.onnx"
    assert _local_path("/srv/m.onnx") == "/srv/m.onnx"
    assert _local_path("s3://b/m.onnx") is None
