"""The real ``mlflow`` client pointed at cnai: experiments, runs, batches, histories."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import mlflow  # mlflow-skinny, a dev dependency: the real client
import pytest
from harness import RunningPlatform
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from cnai import Client
from cnai.tracking.api import Model, ModelVersion


@pytest.fixture
def mlflow_client(platform: RunningPlatform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The MLflow client with the admin token (its calls land in ``default``)."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", platform.admin_token())
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(platform.url)
    yield MlflowClient(platform.url)
    mlflow.set_tracking_uri(None)


def test_the_mlflow_client_logs_and_reads_back_every_point(mlflow_client: Any) -> None:
    experiment_id = mlflow_client.create_experiment(f"mlflow-{id(mlflow_client)}")
    run = mlflow_client.create_run(experiment_id, run_name="r1", tags={"team": "a"})
    run_id = run.info.run_id
    steps = range(2500)
    for start in range(0, 2500, 500):  # as a user batches: 500 steps x 2 metrics
        metrics = [
            Metric(key, value, 1_700_000_000_000 + s, s)
            for s in steps[start : start + 500]
            for key, value in (("loss", 1 / (s + 1)), ("acc", s / 2500))
        ]
        mlflow_client.log_batch(run_id, metrics=metrics, params=[], tags=[])
    mlflow_client.log_batch(run_id, params=[Param("lr", "0.01")], tags=[RunTag("stage", "train")])
    mlflow_client.log_metric(run_id, "lr_now", 0.001, step=7)

    history = mlflow_client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(steps)
    assert all(m.value == 1 / (m.step + 1) for m in history)
    assert all(m.timestamp == 1_700_000_000_000 + m.step for m in history)

    mlflow_client.set_terminated(run_id)
    got = mlflow_client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "r1"
    assert got.data.params == {"lr": "0.01"}
    assert got.data.metrics == {"loss": 1 / 2500, "acc": 2499 / 2500, "lr_now": 0.001}
    assert (got.data.tags["team"], got.data.tags["stage"]) == ("a", "train")
    assert [r.info.run_id for r in mlflow_client.search_runs([experiment_id])] == [run_id]
    assert mlflow_client.get_experiment(experiment_id).name.startswith("mlflow-")


def test_the_fluent_api_works_too(mlflow_client: Any) -> None:
    mlflow.set_experiment(f"fluent-{id(mlflow_client)}")
    with mlflow.start_run() as active:
        mlflow.log_params({"a": 1, "b": "two"})
        for step in range(10):
            mlflow.log_metrics({"x": float(step), "y": 2.0 * step}, step=step)
    run = mlflow_client.get_run(active.info.run_id)
    assert run.data.params == {"a": "1", "b": "two"}
    assert run.data.metrics == {"x": 9.0, "y": 18.0}
    assert run.info.status == "FINISHED"


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        pytest.param(
            lambda c, r: c.log_param(r, "lr", "0.5"),
            "INVALID_PARAMETER_VALUE",
            "already logged as '0.1'",
            id="a-param-logged-again-with-another-value",
        ),
        pytest.param(
            lambda c, r: c.log_metric(r, "loss", math.nan),
            "INVALID_PARAMETER_VALUE",
            "not a finite number",
            id="nan",
        ),
        pytest.param(
            lambda c, r: c.log_metric(r, "loss", math.inf),
            "INVALID_PARAMETER_VALUE",
            "not a finite number",
            id="infinity",
        ),
        pytest.param(
            lambda c, r: c.get_run("f" * 32),
            "RESOURCE_DOES_NOT_EXIST",
            "not found",
            id="unknown-run",
        ),
    ],
)
def test_bad_input_gets_mlflows_error_shape(
    mlflow_client: Any, call: Any, code: str, message: str
) -> None:
    run_id = mlflow_client.create_run("0").info.run_id
    mlflow_client.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as err:
        call(mlflow_client, run_id)
    assert err.value.error_code == code
    assert message in str(err.value)
    assert mlflow_client.get_metric_history(run_id, "loss") == []


def test_calls_land_in_the_namespace_of_the_token(
    platform: RunningPlatform, client: Client, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = client.create_token(namespace, "mlflow test")["token"]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    mine = MlflowClient(platform.url)
    run_id = mine.create_run(mine.create_experiment("team-exp")).info.run_id
    mine.log_metric(run_id, "loss", 0.5, step=1)
    headers = {"Authorization": f"Bearer {platform.admin_token()}"}
    base = f"{platform.url}/apis/tracking.cnai.io/v1/namespaces"
    assert httpx.get(f"{base}/{namespace}/runs/{run_id}", headers=headers).status_code == 200
    assert httpx.get(f"{base}/default/runs/{run_id}", headers=headers).status_code == 404


def test_the_model_registry_through_the_mlflow_client(mlflow_client: Any, client: Client) -> None:
    """Registered models, versions, tags and aliases; an MLflow name that is no resource
    name is kept as the display name; models:/ URIs resolve to the versions."""
    name = f"Fraud Detector {id(mlflow_client)}"
    run_id = mlflow_client.create_run("0").info.run_id
    assert mlflow_client.create_registered_model(name, tags={"team": "risk"}).name == name
    v1 = mlflow_client.create_model_version(name, source="file:///models/a", run_id=run_id)
    v2 = mlflow_client.create_model_version(name, source="file:///models/b", run_id=run_id)
    assert (v1.version, v2.version) == ("1", "2")
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    assert mlflow_client.get_model_version_by_alias(name, "champion").source == "file:///models/a"
    assert mlflow_client.get_registered_model(name).aliases == {"champion": "1"}
    assert [v.version for v in mlflow_client.search_model_versions(f"name='{name}'")] == [
        "1",
        "2",
    ]
    mlflow_client.set_model_version_tag(name, "2", "stage", "canary")
    assert mlflow_client.get_model_version(name, "2").tags == {"stage": "canary"}
    assert mlflow_client.get_model_version_download_uri(name, "2") == "file:///models/b"

    # The same registry, as resources.
    models = [m for m in client.list(Model, "default").items if m.spec.display_name == name]
    assert len(models) == 1
    resource = models[0].metadata.name
    assert resource.startswith("fraud-detector-")
    assert models[0].status.latest_version == 2
    version = client.get(ModelVersion, f"{resource}-v2", "default")
    assert (version.spec.source, version.spec.run_id) == ("file:///models/b", run_id)

    with pytest.raises(MlflowException) as err:
        mlflow_client.set_registered_model_alias(name, "latest", "1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "reserved" in str(err.value)
    with pytest.raises(MlflowException) as err:
        mlflow_client.create_registered_model(name)
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    mlflow_client.delete_registered_model_alias(name, "champion")
    assert mlflow_client.get_registered_model(name).aliases == {}
