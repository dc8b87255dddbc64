"""From cnai's terms to Ray's, without a cluster: requests as Ray resources, gang labels
as a placement group, Ray nodes as cnai Nodes."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.runtimes.ray.placement import (
    Gang,
    bundle,
    describe,
    fits_somewhere,
    gang_of,
    node_info,
    node_name,
    resources_of,
)

NODE_ID = "525c817adf08f13e7c54e3c7c4ca3616ca483b7924d6b1d8f117bec0"


def _pod(requests: dict[str, str], labels: dict[str, str] | None = None, **notes: str) -> Any:
    return {
        "metadata": {"labels": labels or {}, "annotations": notes},
        "spec": {"resources": {"requests": requests}},
    }


def _member(rank: str = "1", size: str = "2", **notes: str) -> Any:
    labels = {
        "cnai.io/trainjob-uid": "job1",
        "cnai.io/gang-generation": "3",
        "cnai.io/node-rank": rank,
    }
    return _pod({}, labels, **{"cnai.io/num-nodes": size, **notes})


@pytest.mark.parametrize(
    ("requests", "want"),
    [
        pytest.param({}, {}, id="no-requests-ask-for-nothing"),
        pytest.param({"cpu": "500m"}, {"CPU": 0.5}, id="millicores-are-fractions"),
        pytest.param(
            {"cpu": "2", "memory": "1Gi", "gpu": "0.5"},
            {"CPU": 2.0, "memory": float(2**30), "GPU": 0.5},
            id="memory-in-bytes-and-fractional-gpu",
        ),
        pytest.param({"victim": "1"}, {"victim": 1.0}, id="other-names-are-custom-resources"),
    ],
)
def test_requests_become_ray_resources(requests: dict[str, str], want: dict[str, float]) -> None:
    assert resources_of(_pod(requests)) == want


def test_without_a_pod_object_the_resolved_cpu_request_counts() -> None:
    assert resources_of(None, cpu_request=1.5) == {"CPU": 1.5}


@pytest.mark.parametrize(
    ("pod", "want"),
    [
        pytest.param(_member(), Gang("gang-job1-3", 2, 1, "PACK"), id="member-packs-by-default"),
        pytest.param(
            _member(**{"cnai.io/placement-strategy": "strict_spread"}),
            Gang("gang-job1-3", 2, 1, "STRICT_SPREAD"),
            id="annotation-picks-the-strategy",
        ),
        pytest.param(
            _member(**{"cnai.io/gang-nodes": "ray-b,ray-a"}),
            Gang("gang-job1-3", 2, 1, "PACK", ("ray-b", "ray-a")),
            id="annotated-nodes-in-rank-order",
        ),
        pytest.param(
            _member(**{"cnai.io/gang-nodes": "ray-b"}),
            Gang("gang-job1-3", 2, 1, "PACK"),
            id="nodes-not-one-per-rank-are-ignored",
        ),
        pytest.param(_pod({}), None, id="standalone-pod-has-no-gang"),
        pytest.param(_member(rank="2", size="2"), None, id="rank-outside-the-gang-is-none"),
        pytest.param(_member(size="x"), None, id="unreadable-size-is-none"),
    ],
)
def test_gang_of_a_pod(pod: Any, want: Gang | None) -> None:
    assert gang_of(pod) == want


def test_unknown_strategy_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="STRICT_PACK"):
        gang_of(_member(**{"cnai.io/placement-strategy": "scatter"}))


def test_a_bundle_is_never_empty() -> None:
    assert bundle({}) == {"CPU": 0.001}
    assert bundle({"GPU": 1.0}) == {"GPU": 1.0}


def test_describe_uses_cnai_names_and_quantities() -> None:
    assert describe({"CPU": 1.0, "memory": float(2**30), "GPU": 0.5}) == (
        "cpu=1, gpu=0.5, memory=1Gi"
    )


def test_fits_somewhere_looks_at_alive_nodes_only() -> None:
    nodes = [
        {"Alive": False, "Resources": {"CPU": 8.0}},
        {"Alive": True, "Resources": {"CPU": 1.0, "GPU": 1.0}},
    ]
    assert fits_somewhere({"CPU": 1.0, "GPU": 1.0}, nodes)
    assert not fits_somewhere({"CPU": 2.0}, nodes)


def test_ray_node_becomes_a_cnai_node() -> None:
    info = node_info(
        {
            "NodeID": NODE_ID,
            "Alive": True,
            "Resources": {
                "CPU": 2.5,
                "GPU": 2.0,
                "memory": float(4 * 2**30),
                "object_store_memory": 1e8,
                "node:10.0.0.1": 1.0,
                "victim": 1.0,
            },
            "Labels": {"ray.io/node-id": NODE_ID, "other": "x"},
        }
    )
    assert info.name == node_name(NODE_ID) == "ray-525c817adf08"
    assert info.capacity == {"cpu": "2500m", "memory": "4Gi", "gpu": "2", "victim": "1"}
    assert info.allocatable == info.capacity
    assert [g["index"] for g in info.gpus] == [0, 1]
    assert info.labels["ray.io/node-id"] == NODE_ID
    assert info.labels["cnai.io/runtime"] == "ray"
    assert "other" not in info.labels
