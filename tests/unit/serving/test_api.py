"""The InferenceService kind: defaults, wire names, and bad specs refused with their path."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cnai.serving.api import InferenceService, ModelFormat, ScalingMetric


def service(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"predictor": {"model": "models:/digits@champion"}, **spec}
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "digits", "namespace": "default"},
        "spec": body,
    }


def test_defaults_and_wire_names() -> None:
    isvc = InferenceService.model_validate(service(canaryTrafficPercent=10))
    spec = isvc.spec
    assert (spec.min_replicas, spec.max_replicas) == (1, 1)
    assert spec.scaling.metric is ScalingMetric.CONCURRENCY
    assert spec.batching.max_batch_size == 1
    wire = isvc.to_dict()["spec"]
    assert wire["canaryTrafficPercent"] == 10
    assert wire["batching"] == {"maxBatchSize": 1, "maxLatencyMs": 5.0}
    assert wire["predictor"]["class"] == ""


@pytest.mark.parametrize(
    "model",
    [
        "models:/digits@champion",
        "models:/digits/3",
        "models:/digits/latest",
        "/srv/models/m.pkl",
        "file:///m.onnx",
    ],
)
def test_model_references_that_are_accepted(model: str) -> None:
    body = service()
    body["spec"]["predictor"]["model"] = model
    assert InferenceService.model_validate(body).spec.predictor.model == model


def test_a_custom_model_names_its_class() -> None:
    body = service()
    body["spec"]["predictor"] |= {"format": "custom", "class": "mymodel:Model"}
    predictor = InferenceService.model_validate(body).spec.predictor
    assert (predictor.format, predictor.class_name) == (ModelFormat.CUSTOM, "mymodel:Model")


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"predictor": {"model": "models:/digits"}}, "spec.predictor.model", "models:/NAME@ALIAS"),
        ({"predictor": {"model": "models:/d/newest"}}, "spec.predictor.model", "NAME/VERSION"),
        ({"predictor": {"model": " "}}, "spec.predictor.model", "must not be empty"),
        ({"predictor": {"model": "m", "format": "pmml"}}, "spec.predictor.format", "sklearn"),
        ({"predictor": {"model": "m", "format": "custom"}}, "spec.predictor", "module:Class"),
        ({"predictor": {"model": "m", "class": "Model"}}, "spec.predictor", "module:Class"),
        ({"minReplicas": 3, "maxReplicas": 2}, "spec", "must not exceed maxReplicas"),
        ({"minReplicas": -1}, "spec.minReplicas", "greater than or equal to 0"),
        ({"maxReplicas": 0}, "spec.maxReplicas", "greater than or equal to 1"),
        ({"canaryTrafficPercent": 101}, "spec.canaryTrafficPercent", "less than or equal to 100"),
        ({"scaling": {"target": 0}}, "spec.scaling.target", "greater than 0"),
        ({"scaling": {"metric": "cpu"}}, "spec.scaling.metric", "concurrency"),
        ({"batching": {"maxBatchSize": 0}}, "spec.batching.maxBatchSize", "greater than"),
        ({"replicas": 2}, "spec.replicas", "Extra inputs are not permitted"),
    ],
)
def test_bad_specs_are_refused_with_the_field_path(
    change: dict[str, Any], path: str, words: str
) -> None:
    body = service()
    body["spec"] |= change
    with pytest.raises(ValidationError) as caught:
        InferenceService.model_validate(body)
    errors = caught.value.errors()
    paths = [".".join(str(p) for p in e["loc"]) for e in errors]
    assert path in paths
    assert any(words in e["msg"] for e in errors)
