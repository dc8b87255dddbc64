"""The scheduling kinds through the real admission chain: defaults, field-path errors,
registration and printer columns."""

from __future__ import annotations

from typing import Any

import pytest

import cnai.scheduling
from cnai.core.admission import AdmissionChain
from cnai.core.errors import Invalid
from cnai.core.kernel import register_kernel
from cnai.core.registry import Registry
from cnai.core.selectors import get_path
from cnai.platform import CAPABILITIES
from cnai.version import GROUP_VERSION


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    register_kernel(reg)
    cnai.scheduling.register_kinds(reg)
    return reg


def manifest(kind: str, name: str = "x", **body: Any) -> dict[str, Any]:
    return {"apiVersion": GROUP_VERSION, "kind": kind, "metadata": {"name": name}, **body}


def cq(*resources: dict[str, Any], cohort: str = "", **spec: Any) -> dict[str, Any]:
    names = [r["name"] for r in resources]
    group = {"coveredResources": names, "flavors": [{"name": "a100", "resources": list(resources)}]}
    return manifest("ClusterQueue", spec={"cohort": cohort, "resourceGroups": [group], **spec})


def workload(*pod_sets: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return manifest("Workload", spec={"queueName": "research", "podSets": list(pod_sets), **spec})


def admit(
    registry: Registry, body: dict[str, Any], old: dict[str, Any] | None = None
) -> dict[str, Any]:
    info = registry.resolve(body["kind"])
    assert info is not None
    return AdmissionChain().admit(info, body, old, namespace="default" if info.namespaced else None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(
            cq({"name": "cpu", "nominalQuota": 8}, {"name": "gpu", "nominalQuota": "lots"}),
            "spec.resourceGroups[0].flavors[0].resources[1].nominalQuota",
            id="nominal-quota-must-be-a-quantity",
        ),
        pytest.param(
            cq({"name": "gpu", "nominalQuota": 4, "lendingLimit": 6}, cohort="c"),
            "spec.resourceGroups[0].flavors[0].resources[0].lendingLimit",
            id="lending-limit-above-nominal",
        ),
        pytest.param(
            cq({"name": "gpu", "nominalQuota": 4, "borrowingLimit": 2}),
            "spec.resourceGroups[0].flavors[0].resources[0].borrowingLimit",
            id="borrowing-limit-without-a-cohort",
        ),
        pytest.param(
            manifest(
                "ClusterQueue",
                spec={
                    "resourceGroups": [
                        {
                            "coveredResources": ["cpu", "gpu"],
                            "flavors": [{"name": "a100", "resources": [{"name": "cpu"}]}],
                        }
                    ]
                },
            ),
            "spec.resourceGroups[0].flavors[0].resources",
            id="flavor-must-list-every-covered-resource",
        ),
        pytest.param(
            cq({"name": "gpu", "nominalQuota": 4}, fairSharing={"weight": "-1"}),
            "spec.fairSharing.weight",
            id="weight-must-be-a-quantity",
        ),
        pytest.param(
            cq({"name": "gpu"}, queueingStrategy="Random"),
            "spec.queueingStrategy",
            id="unknown-queueing-strategy",
        ),
        pytest.param(
            manifest("LocalQueue", spec={}),
            "spec.clusterQueue",
            id="local-queue-must-name-a-cluster-queue",
        ),
        pytest.param(
            workload({"name": "main", "count": 2, "minCount": 3}),
            "spec.podSets[0].minCount",
            id="min-count-above-count",
        ),
        pytest.param(
            workload({"name": "main", "count": 0}),
            "spec.podSets[0].count",
            id="zero-count",
        ),
        pytest.param(
            workload({"name": "main", "requests": {"gpu": "two"}}),
            "spec.podSets[0].requests.gpu",
            id="request-must-be-a-quantity",
        ),
        pytest.param(workload(), "spec.podSets", id="workload-without-pod-sets"),
        pytest.param(
            workload({"name": "a"}, {"name": "a"}), "spec.podSets", id="duplicate-pod-set-names"
        ),
        pytest.param(
            manifest("ResourceFlavor", spec={"nodeLabels": {"gpu model": "a100"}}),
            "spec.nodeLabels.gpu model",
            id="flavor-node-label-key-invalid",
        ),
        pytest.param(
            manifest("PriorityClass", value=2 * 10**9), "value", id="priority-out-of-range"
        ),
    ],
)
def test_bad_manifests_are_rejected_naming_the_field(
    registry: Registry, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        admit(registry, body)
    assert field in [c.field for c in caught.value.causes]


def test_minimal_manifests_get_defaults(registry: Registry) -> None:
    got = admit(registry, cq({"name": "gpu", "nominalQuota": 4}))
    assert got["spec"]["queueingStrategy"] == "BestEffortFIFO"
    assert got["spec"]["preemption"]["withinClusterQueue"] == "Never"
    assert got["spec"]["fairSharing"]["weight"] == 1
    wl = admit(registry, workload({"requests": {"gpu": 1}}))
    assert wl["spec"]["podSets"][0] == {"name": "main", "count": 1, "requests": {"gpu": 1}}
    assert wl["status"]["phase"] == "Pending"
    pc = admit(registry, manifest("PriorityClass", value=100))
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"


@pytest.mark.parametrize(
    ("kind", "old", "new", "field"),
    [
        pytest.param(
            "LocalQueue",
            {"spec": {"clusterQueue": "a"}},
            {"spec": {"clusterQueue": "b"}},
            "spec.clusterQueue",
            id="local-queue-target-is-immutable",
        ),
        pytest.param(
            "PriorityClass", {"value": 1}, {"value": 2}, "value", id="priority-value-is-immutable"
        ),
        pytest.param(
            "Workload",
            {"spec": {"podSets": [{"requests": {"gpu": 1}}]}},
            {"spec": {"podSets": [{"requests": {"gpu": 2}}]}},
            "spec.podSets",
            id="workload-requests-are-immutable",
        ),
    ],
)
def test_immutable_fields(
    registry: Registry, kind: str, old: dict[str, Any], new: dict[str, Any], field: str
) -> None:
    stored = admit(registry, manifest(kind, **old))
    with pytest.raises(Invalid) as caught:
        admit(registry, manifest(kind, **new), stored)
    assert field in [c.field for c in caught.value.causes]


def test_a_workload_may_be_resized(registry: Registry) -> None:
    stored = admit(registry, workload({"count": 2, "minCount": 1, "requests": {"gpu": 1}}))
    resized = admit(registry, workload({"count": 6, "minCount": 1, "requests": {"gpu": 1}}), stored)
    assert resized["spec"]["podSets"][0]["count"] == 6


def test_register_adds_the_five_kinds_with_their_scopes() -> None:
    from types import SimpleNamespace

    reg = Registry()
    cnai.scheduling.register(SimpleNamespace(registry=reg))
    scopes = {i.kind: i.namespaced for i in reg}
    assert scopes == {
        "ResourceFlavor": False,
        "ClusterQueue": False,
        "LocalQueue": True,
        "PriorityClass": False,
        "Workload": True,
    }
    assert reg.resolve("cq") is not None
    assert reg.resolve("wl") is not None


def test_scheduling_comes_before_the_job_kinds_that_use_it() -> None:
    assert CAPABILITIES.index("cnai.scheduling") < CAPABILITIES.index("cnai.batch")


def test_cluster_queue_columns_point_at_status_fields(registry: Registry) -> None:
    info = registry.resolve("clusterqueues")
    assert info is not None
    obj = {
        "spec": {"cohort": "research"},
        "status": {
            "usageText": "cpu 4/8 gpu 2/4 (borrowed gpu 1)",
            "pendingWorkloads": 3,
            "admittedWorkloads": 2,
        },
    }
    values = {c.name: get_path(obj, c.path) for c in info.columns if not c.wide}
    assert values == {
        "COHORT": "research",
        "USED/NOMINAL": "cpu 4/8 gpu 2/4 (borrowed gpu 1)",
        "PENDING": 3,
        "ADMITTED": 2,
    }
