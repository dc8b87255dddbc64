"""The Pod's wire types: fields where Kubernetes has them, under its names."""

from __future__ import annotations

from cnai.core.meta import ObjectMeta
from cnai.core.pods import Pod, PodSpec, PodStatus


def test_the_pod_ip_is_spelt_on_the_wire_as_kubernetes_spells_it() -> None:
    status = PodStatus.model_validate({"phase": "Running", "podIP": "10.244.1.7"})
    assert status.pod_ip == "10.244.1.7"
    wire = status.model_dump(mode="json")
    assert wire["podIP"] == "10.244.1.7"
    assert "podIp" not in wire  # what the camelCase generator alone would write
    assert PodStatus(pod_ip="10.244.1.7").pod_ip == "10.244.1.7"  # Python's name works too
    assert PodStatus.model_validate({"pod_ip": "10.244.1.7"}).pod_ip == "10.244.1.7"


def test_a_pod_round_trips_its_ip_and_an_old_one_has_none() -> None:
    pod = Pod(
        metadata=ObjectMeta(name="p", namespace="default"),
        spec=PodSpec(command=["python3"]),
        status=PodStatus(pod_ip="fd00::7"),
    )
    assert Pod.model_validate(pod.to_dict()).status.pod_ip == "fd00::7"
    assert pod.to_dict()["status"]["podIP"] == "fd00::7"
    assert PodStatus.model_validate({"phase": "Running"}).pod_ip == ""
