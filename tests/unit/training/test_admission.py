"""TrainJob admission through the real chain: every rejection names its field path."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.core.errors import Invalid
from cnai.core.resources import ResourceService

from .conftest import TrainJobBuilder, make_trainjob

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("job", "field"),
    [
        pytest.param(make_trainjob().nodes(0), "spec.trainer.numNodes", id="zero-nodes"),
        pytest.param(make_trainjob().procs(0), "spec.trainer.numProcPerNode", id="zero-procs"),
        pytest.param(
            make_trainjob().cpu("-1"),
            "spec.trainer.resourcesPerNode.requests",
            id="negative-cpu-request",
        ),
        pytest.param(
            make_trainjob().trainer(
                resourcesPerNode={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}
            ),
            "spec.trainer.resourcesPerNode.limits.memory",
            id="limit-below-request",
        ),
        pytest.param(make_trainjob().trainer(command=[]), "spec.trainer.command", id="no-command"),
        pytest.param(make_trainjob().queue("nope"), "spec.queue", id="unknown-queue"),
        pytest.param(
            make_trainjob().priority("nope"), "spec.priorityClassName", id="unknown-priority"
        ),
        pytest.param(
            make_trainjob().elastic(3, 2), "spec.trainer.minNodes", id="min-above-max-nodes"
        ),
        pytest.param(
            make_trainjob().nodes(2).trainer(maxNodes=3),
            "spec.trainer.maxNodes",
            id="num-nodes-differs-from-max-nodes",
        ),
        pytest.param(
            make_trainjob().on_exit("FailJob"),
            "spec.failurePolicy.rules[0].onExitCodes.values",
            id="failure-rule-without-exit-codes",
        ),
        pytest.param(
            make_trainjob().env(**{"1BAD": "x"}),
            "spec.trainer.env[0].name",
            id="env-name-not-an-identifier",
        ),
        pytest.param(make_trainjob().backoff_limit(-1), "spec.backoffLimit", id="negative-backoff"),
        pytest.param(make_trainjob().deadline(0), "spec.activeDeadlineSeconds", id="zero-deadline"),
        pytest.param(make_trainjob().ttl(-5), "spec.ttlSecondsAfterFinished", id="negative-ttl"),
        pytest.param(
            make_trainjob().trainer(terminationGracePeriodSeconds=-1),
            "spec.trainer.terminationGracePeriodSeconds",
            id="negative-grace-period",
        ),
        pytest.param(make_trainjob().trainer(numNode=2), "spec.trainer.numNode", id="misspelt"),
    ],
)
async def test_invalid_trainjobs_are_rejected_naming_the_field(
    service: ResourceService, job: TrainJobBuilder, field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        await service.create("trainjobs", job.build())
    fields = [c.field for c in caught.value.causes]
    assert any(f == field or f.startswith(f"{field}.") for f in fields), fields


async def test_a_valid_trainjob_is_admitted_with_defaults(service: ResourceService) -> None:
    created = await service.create("trainjobs", make_trainjob().build())
    spec = created["spec"]
    assert spec["trainer"]["numProcPerNode"] == 1
    assert (spec["backoffLimit"], spec["suspend"], spec["queue"]) == (3, False, "")
    assert created["status"]["phase"] == "Pending"


async def test_a_full_spec_naming_an_existing_queue_is_admitted(
    service: ResourceService,
) -> None:
    queue = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "LocalQueue",
        "metadata": {"name": "team", "namespace": "default"},
        "spec": {"clusterQueue": "default"},
    }
    await service.create("localqueues", queue)
    job = (
        make_trainjob()
        .elastic(1, 4)
        .procs(2)
        .cpu("2")
        .env(LR="0.1")
        .queue("team")
        .deadline(600)
        .ttl(60)
        .on_exit("FailJob", 42)
        .on_exit("Ignore", 0, 1, operator="NotIn")
    )
    created = await service.create("trainjobs", job.build())
    assert created["spec"]["trainer"]["maxNodes"] == 4
    assert created["spec"]["failurePolicy"]["rules"][1]["onExitCodes"]["operator"] == "NotIn"


async def update_spec(service: ResourceService, **fields: Any) -> dict[str, Any]:
    job = await service.get("trainjobs", "default", "j")
    job["spec"].update(fields)
    return await service.update("trainjobs", job, "default", "j")


@pytest.mark.parametrize(
    "trainer",
    [
        pytest.param({"command": ["python", "other.py"]}, id="command"),
        pytest.param({"numNodes": 4}, id="num-nodes"),
        pytest.param({"env": [{"name": "LR", "value": "1"}]}, id="env"),
    ],
)
async def test_the_trainer_is_immutable(service: ResourceService, trainer: dict[str, Any]) -> None:
    await service.create("trainjobs", make_trainjob().nodes(2).build())
    job = await service.get("trainjobs", "default", "j")
    with pytest.raises(Invalid) as caught:
        await update_spec(service, trainer={**job["spec"]["trainer"], **trainer})
    assert "spec.trainer" in [c.field for c in caught.value.causes]


async def test_suspend_deadline_and_backoff_may_change(service: ResourceService) -> None:
    await service.create("trainjobs", make_trainjob().build())
    updated = await update_spec(service, suspend=True, activeDeadlineSeconds=60, backoffLimit=1)
    assert (updated["spec"]["suspend"], updated["spec"]["backoffLimit"]) == (True, 1)
