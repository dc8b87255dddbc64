"""`cnai runs` and `cnai models` against a real platform."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import RunningPlatform
from test_cli import cnai

from cnai import Client
from cnai.tracking import registry
from cnai.tracking.api import Model
from cnai.tracking.sdk import TrackingClient


@pytest.fixture
def tracking(platform: RunningPlatform, namespace: str) -> Iterator[TrackingClient]:
    client = TrackingClient(platform.url, platform.admin_token(), namespace)
    yield client
    client.close()


def _run(tracking: TrackingClient, name: str, lr: str, loss: float) -> str:
    run_id = str(tracking.create_run(name=name, group="cli", params={"lr": lr, "bs": "32"})["id"])
    columns = {"steps": [0, 1], "values": [loss * 2, loss], "timestamps": [1, 2]}
    tracking.request("POST", f"/runs/{run_id}/log", json={"metrics": {"loss": columns}})
    return run_id


def test_runs_list_show_and_compare(
    platform: RunningPlatform, tracking: TrackingClient, namespace: str
) -> None:
    a = _run(tracking, "small-lr", "0.01", 0.25)
    b = _run(tracking, "big-lr", "0.1", 0.5)

    listed = cnai(platform, "runs", "list", "-n", namespace, "--group", "cli")
    assert listed.code == 0, listed.err
    assert listed.lines[0].split() == ["ID", "NAME", "STATUS", "STARTED", "METRICS"]
    assert {line.split()[0] for line in listed.lines[1:]} == {a, b}
    assert any("loss=0.25" in line for line in listed.lines)

    shown = cnai(platform, "runs", "show", a, "-n", namespace)
    assert shown.code == 0, shown.err
    assert "Status:    RUNNING" in shown.lines
    assert "  lr: 0.01" in shown.lines
    assert any(line.split() == ["loss", "0.25", "1"] for line in shown.lines)

    compared = cnai(platform, "runs", "compare", a, b, "-n", namespace)
    assert compared.code == 0, compared.err
    rows = {" ".join(line.split()[:3]): line.split() for line in compared.lines[1:]}
    assert rows["* param lr"][-2:] == ["0.01", "0.1"]  # differs: marked
    assert rows["param bs 32"][-2:] == ["32", "32"]
    assert rows["metric loss 0.25"][-2:] == ["0.25", "0.5"]

    missing = cnai(platform, "runs", "show", "f" * 32, "-n", namespace)
    assert missing.code == 1
    assert "not found" in missing.err


def test_models_list_show_and_alias(
    platform: RunningPlatform, client: Client, namespace: str
) -> None:
    body = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "iris", "namespace": namespace},
        "spec": {"displayName": "Iris Classifier"},
    }
    client.create(body)
    for n in (1, 2):
        client.create(
            {
                "apiVersion": "cnai.io/v1alpha1",
                "kind": "ModelVersion",
                "metadata": {"name": f"iris-v{n}", "namespace": namespace},
                "spec": {
                    "model": "iris",
                    "version": n,
                    "source": f"file:///m/{n}",
                    "format": "onnx",
                },
            }
        )
    set_alias = cnai(
        platform, "models", "alias", "Iris Classifier", "champion", "2", "-n", namespace
    )
    assert set_alias.code == 0, set_alias.err
    assert client.get(Model, "iris", namespace).spec.aliases == {"champion": 2}
    listed = cnai(platform, "models", "list", "-n", namespace)
    assert listed.lines[1].split()[:1] == ["iris"]
    assert "champion=2" in listed.lines[1]
    shown = cnai(platform, "models", "show", "iris", "-n", namespace)
    assert shown.lines[0] == "Model:       Iris Classifier (iris)"
    assert shown.lines[-1].split()[:3] == ["2", "champion", "onnx"]
    nope = cnai(platform, "models", "alias", "iris", "prod", "7", "-n", namespace)
    assert nope.code == 1
    assert "not found" in nope.err
    gone = cnai(platform, "models", "alias", "iris", "champion", "--delete", "-n", namespace)
    assert gone.code == 0, gone.err
    assert client.get(Model, "iris", namespace).spec.aliases == {}
    assert registry.resource_name("Iris Classifier") != "iris"  # found by display name
