"""``/metrics`` on a real platform, scraped and parsed with prometheus-client's parser,
against what the API says."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cnai import Client
from cnai.batch.api import Job
from cnai.core.pods import Pod
from cnai.scheduling.api import ClusterQueue

from .harness import RunningPlatform, wait_until
from .workloads import JobBuilder, cpu_queue

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client) -> Samples:
    answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    out: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


@pytest.fixture
def queue(client: Client, namespace: str) -> Iterator[tuple[str, str]]:
    """A ClusterQueue of this test's own (500m cpu) and a LocalQueue in ``namespace``."""
    with cpu_queue(client, namespace, "cq-metrics", "500m") as found:
        yield found


def test_metrics_need_an_admin_token(platform: RunningPlatform, client: Client) -> None:
    with httpx.Client(base_url=platform.url, timeout=30) as anonymous:
        assert anonymous.get("/metrics").status_code == 401
        token = client.create_token("default", "metrics test")["token"]
        answer = anonymous.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    assert "admin" in answer.json()["message"]


def test_api_requests_are_counted(http: httpx.Client, client: Client, namespace: str) -> None:
    route = "/apis/cnai.io/v1alpha1/namespaces/{ns}/{plural}"
    labels = {"verb": "list", "resource": "secrets", "route": route, "code": "200"}
    before = value(scrape(http), "cnai_apiserver_requests_total", **labels) or 0
    for _ in range(3):
        client.list("secret", namespace)
    after = scrape(http)
    assert value(after, "cnai_apiserver_requests_total", **labels) == before + 3
    timed = value(
        after,
        "cnai_apiserver_request_duration_seconds_count",
        verb="list",
        resource="secrets",
        route=route,
    )
    assert timed is not None
    assert timed >= 3


def test_a_job_shows_in_queue_scheduler_pod_and_controller_metrics(
    http: httpx.Client, client: Client, namespace: str, mark: str, queue: tuple[str, str]
) -> None:
    cq, lq = queue
    wait_until(lambda: bool(client.get(ClusterQueue, cq).status.flavors_usage), 30, "usage")
    samples = scrape(http)
    assert (
        value(
            samples,
            "cnai_clusterqueue_nominal_quota",
            cluster_queue=cq,
            flavor="default",
            resource="cpu",
        )
        == 0.5
    )
    assert value(samples, "cnai_clusterqueue_pending_workloads", cluster_queue=cq) == 0
    assert (
        value(samples, "cnai_localqueue_pending_workloads", namespace=namespace, local_queue=lq)
        == 0
    )

    builder = JobBuilder("quick", namespace).runs("print('done')", mark)
    builder.spec["queue"] = lq
    builder.pod.spec["resources"] = {"requests": {"cpu": "100m"}}
    client.create(builder.build())

    def succeeded() -> bool:
        job = client.get(Job, "quick", namespace)
        return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)

    wait_until(succeeded, 60, "the job to complete")
    pods = client.list(Pod, namespace).items
    samples = scrape(http)
    for phase in ("Succeeded", "Running", "Pending", "Failed"):
        expected = sum(1 for p in pods if p.status.phase == phase)
        got = value(samples, "cnai_pods", namespace=namespace, phase=phase)
        assert (got or 0) == expected, phase
    assert value(samples, "cnai_scheduler_admissions_total", cluster_queue=cq) == 1
    assert value(samples, "cnai_scheduler_admission_wait_seconds_count", cluster_queue=cq) == 1
    status = client.get(ClusterQueue, cq).status
    assert (
        value(samples, "cnai_clusterqueue_admitted_workloads", cluster_queue=cq)
        == status.admitted_workloads
    )
    assert value(
        samples, "cnai_controller_reconcile_total", controller="scheduler", result="success"
    )
    assert value(samples, "cnai_controller_workqueue_depth", controller="scheduler") is not None
    assert "process_cpu_seconds_total" in names(samples)
    # No GPU on this machine: no DCGM families, rather than zeros that would look real.
    assert not any(name.startswith("DCGM_") for name in names(samples))
