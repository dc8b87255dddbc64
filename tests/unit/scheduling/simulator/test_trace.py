"""Loading the Alibaba trace CSV format, with and without the optional columns."""

from __future__ import annotations

from pathlib import Path

from cnai.scheduling.placement import PodRequest
from cnai.scheduling.simulator import load_nodes, load_pods


def test_nodes_and_pods_load(tmp_path: Path) -> None:
    (tmp_path / "nodes.csv").write_text(
        "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,32000,1024,0,\n"
    )
    (tmp_path / "pods.csv").write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
        "creation_time,deletion_time,scheduled_time\n"
        "p0,6000,12288,1,460,,LS,Running,0,100,5\n"
        "p1,1000,10,0,0,,BE,Running,3,9,3\n"
        "p2,1000,10,2,1000,V100M16|V100M32,LS,Running,4,8,4\n"
    )
    nodes = load_nodes(tmp_path / "nodes.csv")
    assert [(n.num_gpu, n.gpu_model) for n in nodes] == [(2, "P100"), (0, "")]
    pods = load_pods(tmp_path / "pods.csv")
    assert pods.requests[0] == PodRequest(6000, 12288, 1, 460)
    assert pods.requests[2].gpu_models == {"V100M16", "V100M32"}
    assert pods.scheduled.tolist() == [5, 3, 4]
    assert pods.gpu_milli.tolist() == [460, 0, 2000]


def test_times_are_optional(tmp_path: Path) -> None:
    (tmp_path / "pods.csv").write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1000\n"
    )
    pods = load_pods(tmp_path / "pods.csv")
    assert pods.creation.tolist() == [0]
