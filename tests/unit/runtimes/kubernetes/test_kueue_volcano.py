"""Handing workloads to Kueue and Volcano: goldens, and the fields their documentation
specifies, checked by name, place and type.

Kueue (kueue.sigs.k8s.io, docs/tasks/run/plain_pods, docs/tasks/run/deployment,
docs/concepts/workload_priority_class): ``kueue.x-k8s.io/queue-name`` label;
``kueue.x-k8s.io/pod-group-name`` label and ``kueue.x-k8s.io/pod-group-total-count``
annotation on every member, consistently; ``kueue.x-k8s.io/retriable-in-group: "false"``;
``kueue.x-k8s.io/priority-class`` label.

Volcano (volcano.sh docs "PodGroup"; volcano-sh/apis scheduling/v1beta1 types.go):
PodGroup ``spec.minMember`` (int32), ``spec.minResources`` (ResourceList),
``spec.queue`` (string), ``spec.priorityClassName`` (string); a member pod carries the
``scheduling.k8s.io/group-name`` annotation and ``schedulerName: volcano``.
"""

from __future__ import annotations

from typing import Any

import pytest

from cnai.runtimes.kubernetes import kueue, volcano
from cnai.runtimes.kubernetes.render import (
    Admission,
    RenderOptions,
    gang_of,
    render_gang_pod_group,
    render_gang_service,
    render_pod,
    render_revision,
)

from .builders import Obj, assert_golden, example, validate

KUEUE = RenderOptions(admission=Admission.KUEUE, queue="team-a", priority_class="batch-high")
VOLCANO = RenderOptions(admission=Admission.VOLCANO, queue="ml", priority_class="gang-high")
FLAVOR = {"gpu.model": "h200"}

# Volcano's PodGroup spec as its API types define it: field -> JSON type.
PODGROUP_SPEC_FIELDS: dict[str, type] = {
    "minMember": int,
    "minTaskMember": dict,
    "queue": str,
    "priorityClassName": str,
    "minResources": dict,
    "networkTopology": dict,
}


def gang(options: RenderOptions, **changes: Any) -> tuple[list[Obj], list[Obj]]:
    """The TrainJob example's gang: (its extra objects, its rendered pods)."""
    built = example("TrainJob").image()
    if "gpus" in changes:
        built = built.gpus(changes["gpus"])
    pods = built.pods()
    group = gang_of(pods[0])
    assert group is not None
    rendered = [render_pod(p, options, flavor_labels=FLAVOR) for p in pods]
    extra = [render_gang_service(group, options)]
    if options.admission is Admission.VOLCANO:
        extra.insert(0, render_gang_pod_group(group, rendered[0], options))
    return extra, rendered


# -- goldens -------------------------------------------------------------------------------


def test_kueue_gang_matches_the_golden_file() -> None:
    extra, pods = gang(KUEUE, gpus="1")
    assert_golden("kueue-gang", [*extra, *pods])


def test_kueue_job_pod_and_revision_match_the_golden_file() -> None:
    pod = render_pod(example("Job").image().pods()[0], KUEUE)
    replica = example("InferenceService").image().pods()[0]
    assert_golden("kueue-job-and-revision", [pod, *render_revision(replica, KUEUE, replicas=1)])


def test_volcano_gang_matches_the_golden_file() -> None:
    extra, pods = gang(VOLCANO, gpus="2")
    assert_golden("volcano-gang", [*extra, *pods])


# -- Kueue's documented fields -------------------------------------------------------------


def test_kueue_gang_members_carry_the_documented_group_fields_consistently() -> None:
    _, pods = gang(KUEUE)
    groups = set()
    for pod in pods:
        validate(pod)
        labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
        assert labels["kueue.x-k8s.io/queue-name"] == "team-a"
        assert labels["kueue.x-k8s.io/priority-class"] == "batch-high"
        count = annotations["kueue.x-k8s.io/pod-group-total-count"]
        assert isinstance(count, str)
        assert count.isdigit()
        assert int(count) == len(pods)
        assert annotations["kueue.x-k8s.io/retriable-in-group"] == "false"
        groups.add(labels["kueue.x-k8s.io/pod-group-name"])
    assert len(groups) == 1  # one group, the same on every member


def test_kueue_places_the_pods_itself() -> None:
    options = RenderOptions(admission=Admission.KUEUE, queue="q", bind_node_name=True)
    pod = render_pod(example("Job").image().pods()[0], options, flavor_labels=FLAVOR)
    assert "nodeName" not in pod["spec"]
    assert "nodeSelector" not in pod["spec"]  # Kueue injects its flavor's labels
    assert "kueue.x-k8s.io/pod-group-name" not in pod["metadata"]["labels"]  # a single pod


def test_kueue_deployment_queues_each_replica_from_the_pod_template() -> None:
    replica = example("InferenceService").image().pods()[0]
    deployment, _ = render_revision(replica, KUEUE, replicas=2)
    for labels in (
        deployment["spec"]["template"]["metadata"]["labels"],
        deployment["metadata"]["labels"],
    ):
        assert labels[kueue.QUEUE_NAME_LABEL] == "team-a"
    assert deployment["spec"]["selector"]["matchLabels"].keys() <= (
        deployment["spec"]["template"]["metadata"]["labels"].keys()
    )


def test_kueue_needs_a_local_queue() -> None:
    with pytest.raises(ValueError, match="LocalQueue"):
        RenderOptions(admission=Admission.KUEUE)
    with pytest.raises(ValueError, match="LocalQueue"):
        kueue.queue_pod({"metadata": {}}, "")


def test_kueues_names_are_the_documented_ones() -> None:
    assert kueue.QUEUE_NAME_LABEL == "kueue.x-k8s.io/queue-name"
    assert kueue.POD_GROUP_NAME_LABEL == "kueue.x-k8s.io/pod-group-name"
    assert kueue.POD_GROUP_TOTAL_COUNT_ANNOTATION == "kueue.x-k8s.io/pod-group-total-count"
    assert kueue.RETRIABLE_IN_GROUP_ANNOTATION == "kueue.x-k8s.io/retriable-in-group"
    assert kueue.PRIORITY_CLASS_LABEL == "kueue.x-k8s.io/priority-class"


# -- Volcano's documented fields -----------------------------------------------------------


def test_volcano_pod_group_has_the_documented_fields_with_their_types() -> None:
    (group, service), pods = gang(VOLCANO, gpus="2")
    assert (group["apiVersion"], group["kind"]) == ("scheduling.volcano.sh/v1beta1", "PodGroup")
    spec = group["spec"]
    assert set(spec) <= set(PODGROUP_SPEC_FIELDS)
    for name, value in spec.items():
        assert isinstance(value, PODGROUP_SPEC_FIELDS[name]), name
    assert spec["minMember"] == len(pods) == 2
    assert spec["queue"] == "ml"
    assert spec["priorityClassName"] == "gang-high"
    assert all(isinstance(v, str) for v in spec["minResources"].values())
    # Two nodes of 1 cpu, 1Gi and 2 GPUs each.
    assert spec["minResources"] == {"cpu": "2", "memory": "2Gi", "nvidia.com/gpu": "4"}
    assert group["metadata"]["name"] == service["metadata"]["name"]
    assert group["metadata"]["ownerReferences"][0]["kind"] == "TrainJob"


def test_volcano_members_join_the_group_and_are_placed_by_volcano() -> None:
    (group, _), pods = gang(VOLCANO)
    for pod in pods:
        validate(pod)
        assert pod["spec"]["schedulerName"] == "volcano"
        annotations = pod["metadata"]["annotations"]
        assert annotations["scheduling.k8s.io/group-name"] == group["metadata"]["name"]
        assert "nodeName" not in pod["spec"]
        assert pod["spec"]["nodeSelector"] == FLAVOR  # cnai's flavor still says where


def test_volcano_leaves_pods_outside_gangs_to_the_default_scheduler() -> None:
    pod = render_pod(example("Job").image().pods()[0], VOLCANO)
    assert "schedulerName" not in pod["spec"]
    assert volcano.GROUP_NAME_ANNOTATION not in pod["metadata"].get("annotations", {})


@pytest.mark.parametrize(
    ("quantity", "n", "expected"),
    [
        pytest.param("512Mi", 2, "1024Mi", id="binary-suffix-kept"),
        pytest.param("100m", 3, "300m", id="millicores"),
        pytest.param("1.5", 2, "3", id="decimal-normalized"),
        pytest.param("1", 8, "8", id="whole"),
    ],
)
def test_gang_totals_keep_the_users_units(quantity: str, n: int, expected: str) -> None:
    assert volcano.times(quantity, n) == expected


def test_a_pod_group_needs_a_member() -> None:
    with pytest.raises(ValueError, match=r"spec\.minMember"):
        volcano.render_pod_group("g", "ns", min_member=0, min_resources={})
