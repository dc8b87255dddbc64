"""Job admission through the real chain: every rejection names its field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnai.core.errors import Invalid
from cnai.core.manifests import load_path
from cnai.core.resources import ResourceService

from .builders import JobBuilder, make_job

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parents[3] / "examples" / "quickstart"


@pytest.mark.parametrize(
    ("job", "field"),
    [
        pytest.param(make_job().parallelism(-1), "spec.parallelism", id="negative-parallelism"),
        pytest.param(make_job().completions(0), "spec.completions", id="zero-completions"),
        pytest.param(make_job().backoff_limit(-1), "spec.backoffLimit", id="negative-backoff"),
        pytest.param(make_job().deadline(0), "spec.activeDeadlineSeconds", id="zero-deadline"),
        pytest.param(make_job().ttl(-5), "spec.ttlSecondsAfterFinished", id="negative-ttl"),
        pytest.param(make_job().pod(command=[]), "spec.template.spec.command", id="no-command"),
        pytest.param(
            make_job().pod(env=[{"name": "1BAD", "value": "x"}]),
            "spec.template.spec.env[0].name",
            id="env-name-not-an-identifier",
        ),
        pytest.param(
            make_job().pod(resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
            "spec.template.spec.resources.limits.memory",
            id="limit-below-request",
        ),
        pytest.param(
            make_job().pod(restartPolicy="OnFailure"),
            "spec.template.spec.restartPolicy",
            id="restart-policy-must-be-never",
        ),
        pytest.param(
            make_job().template_labels(**{"cnai.io/job-uid": "forged"}),
            "spec.template.metadata.labels.cnai.io/job-uid",
            id="template-sets-a-controller-label",
        ),
        pytest.param(
            make_job().template_labels(team="not valid!"),
            "spec.template.metadata.labels.team",
            id="template-label-value-invalid",
        ),
        pytest.param(make_job().without_template(), "spec.template", id="no-template"),
        pytest.param(make_job().spec(paralelism=2), "spec.paralelism", id="misspelt-field"),
    ],
)
async def test_invalid_jobs_are_rejected_naming_the_field(
    service: ResourceService, job: JobBuilder, field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        await service.create("jobs", job.build())
    assert field in [c.field for c in caught.value.causes]


async def test_defaults_fill_a_minimal_job(service: ResourceService) -> None:
    created = await service.create("jobs", make_job().build())
    spec = created["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 6)
    assert (spec["suspend"], spec["queue"]) == (False, "")
    assert created["status"]["phase"] == "Pending"


async def update_spec(service: ResourceService, **fields: Any) -> dict[str, Any]:
    job = await service.get("jobs", "default", "j")
    job["spec"].update(fields)
    return await service.update("jobs", job, "default", "j")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"completions": 3}, "spec.completions", id="completions-are-immutable"),
        pytest.param(
            {"template": {"spec": {"command": ["python3", "other.py"]}}},
            "spec.template",
            id="the-template-is-immutable",
        ),
        pytest.param({"queue": "other"}, "spec.queue", id="queue-fixed-once-started"),
    ],
)
async def test_updates_that_would_change_a_started_job_are_rejected(
    service: ResourceService, fields: dict[str, Any], field: str
) -> None:
    await local_queues(service, "team-a", "other")
    created = await service.create("jobs", make_job().queue("team-a").build())
    created["status"] = {"startTime": "2026-01-01T00:00:00Z"}
    await service.update("jobs", created, "default", "j", status=True)
    with pytest.raises(Invalid) as caught:
        await update_spec(service, **fields)
    assert [c.field for c in caught.value.causes] == [field]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"parallelism": 5}, id="parallelism-may-change"),
        pytest.param({"suspend": True, "activeDeadlineSeconds": 9}, id="suspend-and-deadline"),
        pytest.param({"queue": "other"}, id="queue-may-change-before-the-job-starts"),
        pytest.param({"parallelism": 3, "minParallelism": 2}, id="an-elastic-job-may-resize"),
    ],
)
async def test_updates_a_job_allows(service: ResourceService, fields: dict[str, Any]) -> None:
    await local_queues(service, "team-a", "other")
    await service.create("jobs", make_job().queue("team-a").build())
    updated = await update_spec(service, **fields)
    assert all(updated["spec"][k] == v for k, v in fields.items())


async def local_queues(service: ResourceService, *names: str) -> None:
    for name in names:
        body = {"apiVersion": "cnai.io/v1alpha1", "kind": "LocalQueue",
                "metadata": {"name": name}, "spec": {"clusterQueue": "default"}}  # fmt: skip
        await service.create("localqueues", body, "default")


async def test_a_job_naming_a_queue_or_priority_class_that_does_not_exist_is_refused(
    service: ResourceService,
) -> None:
    job = make_job().queue("nope").build()
    job["spec"]["priorityClassName"] = "urgent"
    with pytest.raises(Invalid) as caught:
        await service.create("jobs", job)
    assert [(c.field, c.message) for c in caught.value.causes] == [
        ("spec.queue", "LocalQueue 'nope' not found in namespace 'default'"),
        ("spec.priorityClassName", "PriorityClass 'urgent' not found"),
    ]
    # The namespace's default queue is always there (the platform makes it).
    await service.create("jobs", make_job().queue("default").build())


async def test_the_quickstart_job_is_admitted(service: ResourceService) -> None:
    docs = [d for d in load_path(EXAMPLES) if d["kind"] in ("Namespace", "Secret", "Job")]
    plural = {"Namespace": "namespaces", "Secret": "secrets", "Job": "jobs"}
    for doc in docs:
        await service.create(plural[doc["kind"]], doc)
    job = await service.get("jobs", "quickstart", "primes")
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (2, 2)


async def test_parallelism_may_not_go_below_min_parallelism(service: ResourceService) -> None:
    await service.create("jobs", make_job().parallelism(3).spec(minParallelism=2).build())
    with pytest.raises(Invalid) as caught:
        await update_spec(service, parallelism=1)
    assert [(c.field, c.message) for c in caught.value.causes] == [
        ("spec.minParallelism", "must be <= parallelism (1)")
    ]
