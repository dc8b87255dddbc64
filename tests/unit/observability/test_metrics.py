"""What ``/metrics`` reads when scraped, from a snapshot of objects as the store holds
them: families, labels and values, through prometheus-client's own exposition."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cnai.observability.metrics import ClusterCollector, GPUSample, Snapshot, read_gpus


def exposed(snapshot: Snapshot) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    collector = ClusterCollector("host-1")
    collector.snapshot = snapshot
    registry.register(collector)
    text = generate_latest(registry).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def obj(name: str, namespace: str | None = None, **status: Any) -> dict[str, Any]:
    meta = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {"metadata": meta, "status": status}


def test_queues_pods_and_restarts_from_the_objects() -> None:
    usage = [
        {
            "name": "default",
            "resources": [
                {"name": "cpu", "nominal": "4", "used": "1500m"},
                {"name": "memory", "nominal": "8Gi", "used": "512Mi"},
            ],
        }
    ]
    snap = Snapshot(
        clusterqueues=[obj("cq", pendingWorkloads=3, admittedWorkloads=2, flavorsUsage=usage)],
        localqueues=[obj("lq", "team", pendingWorkloads=3)],
        pods=[
            obj("a", "team", phase="Running"),
            obj("b", "team", phase="Running"),
            obj("c", "team", phase="Succeeded"),
            obj("d", "other"),  # no phase yet: Pending
        ],
        trainjobs=[obj("t", "team", restarts=2)],
    )
    got = exposed(snap)
    assert got["cnai_clusterqueue_pending_workloads"] == [({"cluster_queue": "cq"}, 3)]
    assert got["cnai_clusterqueue_admitted_workloads"] == [({"cluster_queue": "cq"}, 2)]
    quota = {
        tuple(sorted(labels.items())): v for labels, v in got["cnai_clusterqueue_nominal_quota"]
    }
    used = {
        tuple(sorted(labels.items())): v for labels, v in got["cnai_clusterqueue_resource_usage"]
    }
    cpu = (("cluster_queue", "cq"), ("flavor", "default"), ("resource", "cpu"))
    memory = (("cluster_queue", "cq"), ("flavor", "default"), ("resource", "memory"))
    assert (quota[cpu], used[cpu]) == (4, 1.5)  # cores
    assert (quota[memory], used[memory]) == (8 * 2**30, 512 * 2**20)  # bytes
    assert got["cnai_localqueue_pending_workloads"] == [
        ({"namespace": "team", "local_queue": "lq"}, 3)
    ]
    assert sorted((labels["namespace"], labels["phase"], v) for labels, v in got["cnai_pods"]) == [
        ("other", "Pending", 1),
        ("team", "Running", 2),
        ("team", "Succeeded", 1),
    ]
    assert got["cnai_trainjob_restarts"] == [({"namespace": "team", "trainjob": "t"}, 2)]
    assert not any(name.startswith("DCGM_") for name in got)


def test_gpus_are_exposed_under_the_dcgm_exporters_names_and_labels() -> None:
    gpu = GPUSample(0, "GPU-1234", "NVIDIA H200", 87.0, 1024.0, 142_000.0, 61.0, 412.5)
    bare = GPUSample(1, "GPU-5678", "NVIDIA H200", 0.0, 0.0, 143_000.0)  # no temp or power
    got = exposed(Snapshot(gpus=[gpu, bare]))
    labels = {
        "gpu": "0",
        "UUID": "GPU-1234",
        "device": "nvidia0",
        "modelName": "NVIDIA H200",
        "Hostname": "host-1",
    }
    assert (labels, 87.0) in got["DCGM_FI_DEV_GPU_UTIL"]
    assert (labels, 1024.0) in got["DCGM_FI_DEV_FB_USED"]
    assert (labels, 142_000.0) in got["DCGM_FI_DEV_FB_FREE"]
    assert got["DCGM_FI_DEV_GPU_TEMP"] == [(labels, 61.0)]
    assert got["DCGM_FI_DEV_POWER_USAGE"] == [(labels, 412.5)]
    assert len(got["DCGM_FI_DEV_GPU_UTIL"]) == 2


def test_a_quantity_that_does_not_parse_reads_as_zero() -> None:
    usage = [{"name": "f", "resources": [{"name": "cpu", "nominal": "lots", "used": "1"}]}]
    got = exposed(Snapshot(clusterqueues=[obj("cq", flavorsUsage=usage)]))
    assert [v for _, v in got["cnai_clusterqueue_nominal_quota"]] == [0]


def test_gpu_readings_from_nvml() -> None:
    samples = read_gpus()
    if importlib.util.find_spec("pynvml") is None or not samples:
        pytest.skip("no NVIDIA GPU and driver on this machine: NVML has nothing to read")
    for s in samples:
        assert s.uuid.startswith("GPU-")
        assert 0 <= s.utilization <= 100
        assert s.used_mib + s.free_mib > 0
