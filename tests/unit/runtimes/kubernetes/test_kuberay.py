"""The KubeRay RayCluster `cnai k8s manifests --runtime ray` adds, checked against
KubeRay's own API and Kubernetes' Pod schema.

The fields and their types are KubeRay's ``ray.io/v1`` (ray-project/kuberay,
``ray-operator/apis/ray/v1/raycluster_types.go``, commit 026f1433): ``RayClusterSpec``
has ``headGroupSpec`` (``HeadGroupSpec``) and ``workerGroupSpecs`` (``[]WorkerGroupSpec``);
``HeadGroupSpec`` has ``rayStartParams`` (``map[string]string``, required) and
``template`` (``corev1.PodTemplateSpec``); ``WorkerGroupSpec`` has ``groupName`` (string),
``replicas``, ``minReplicas``, ``maxReplicas`` (``*int32``), ``rayStartParams`` and
``template``. The head's Service is ``<cluster>-head-svc`` (``GenerateHeadServiceName`` in
``ray-operator/controllers/ray/utils/util.go``), its Ray client port 10001.
"""

from __future__ import annotations

from typing import Any

import pytest

from cnai.runtimes.kubernetes.kuberay import (
    RayClusterOptions,
    client_address,
    head_service,
    ray_cluster,
)

from .builders import assert_golden, validate

EVERY_OPTION = RayClusterOptions(
    namespace="ml",
    image="reg.local/cnai:dev",
    workers=2,
    max_workers=4,
    worker_cpu="4",
    worker_memory="16Gi",
    worker_gpus=1,
    labels={"app.kubernetes.io/part-of": "cnai"},
)

# Keep in sync with raycluster_types.go (see the module docstring).
HEAD_FIELDS = {"rayStartParams": dict, "template": dict}
WORKER_FIELDS = {
    "groupName": str,
    "replicas": int,
    "minReplicas": int,
    "maxReplicas": int,
    "rayStartParams": dict,
    "template": dict,
}
INT32_MAX = 2**31 - 1


def pod_from(template: dict[str, Any], name: str) -> dict[str, Any]:
    """A core/v1 Pod made from a group's template, as KubeRay makes its pods."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**template["metadata"], "name": name, "namespace": "ml"},
        "spec": template["spec"],
    }


def test_the_ray_cluster_matches_the_golden_file() -> None:
    assert_golden("ray-cluster", [ray_cluster(EVERY_OPTION)])


def test_the_documented_fields_have_the_documented_types() -> None:
    cluster = ray_cluster(EVERY_OPTION)
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    spec = cluster["spec"]
    assert set(spec) == {"headGroupSpec", "workerGroupSpecs"}
    head = spec["headGroupSpec"]
    assert {k: type(v) for k, v in head.items()} == HEAD_FIELDS
    (worker,) = spec["workerGroupSpecs"]
    assert {k: type(v) for k, v in worker.items()} == WORKER_FIELDS
    for group in (head, worker):  # map[string]string: every value a string
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())
    assert 0 <= worker["minReplicas"] <= worker["replicas"] <= worker["maxReplicas"] <= INT32_MAX
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"  # noqa: S104 - a value checked
    ports = {
        p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]
    }
    assert ports["client"] == 10001


def test_each_groups_template_is_a_valid_pod() -> None:
    spec = ray_cluster(EVERY_OPTION)["spec"]
    validate(pod_from(spec["headGroupSpec"]["template"], "head"))
    validate(pod_from(spec["workerGroupSpecs"][0]["template"], "worker"))


def test_workers_get_their_resources_and_gpus() -> None:
    (worker,) = ray_cluster(EVERY_OPTION)["spec"]["workerGroupSpecs"]
    resources = worker["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "4", "memory": "16Gi"}
    assert resources["limits"] == {"memory": "16Gi", "nvidia.com/gpu": "1"}
    plain = ray_cluster(RayClusterOptions(namespace="ml", image="i"))["spec"]
    (worker,) = plain["workerGroupSpecs"]
    assert (worker["replicas"], worker["minReplicas"], worker["maxReplicas"]) == (1, 1, 1)
    assert (
        "nvidia.com/gpu" not in worker["template"]["spec"]["containers"][0]["resources"]["limits"]
    )


def test_cnai_reaches_the_head_through_kuberays_head_service() -> None:
    assert head_service(EVERY_OPTION) == "cnai-ray-head-svc"
    assert client_address(EVERY_OPTION) == "ray://cnai-ray-head-svc.ml.svc:10001"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"workers": -1}, "ray_workers: must be at least 0", id="negative-workers"),
        pytest.param(
            {"workers": 3, "max_workers": 2},
            "ray_max_workers: must be at least",
            id="max-below-min",
        ),
        pytest.param({"worker_gpus": -1}, "ray_worker_gpus", id="negative-gpus"),
    ],
)
def test_impossible_sizes_are_refused(fields: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RayClusterOptions(namespace="ml", image="i", **fields)  # type: ignore[arg-type]
