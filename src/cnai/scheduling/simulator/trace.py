"""Loading cluster and workload traces (the Alibaba GPU cluster trace 2023 CSV format).

Nodes: ``sn,cpu_milli,memory_mib,gpu,model``. Pods: ``name,cpu_milli,memory_mib,num_gpu,
gpu_milli[,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time]``; the
trailing columns are optional (the multigpu traces omit them; replay needs the times).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement import NodeSpec, PodRequest, parse_models


@dataclass(frozen=True, eq=False)
class PodTrace:
    """Pods in trace order, with their times in seconds (0 where the trace has none)."""

    names: tuple[str, ...]
    requests: tuple[PodRequest, ...]
    creation: NDArray[np.int64]
    deletion: NDArray[np.int64]
    scheduled: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def gpu_milli(self) -> NDArray[np.int64]:
        """Total milli-GPU each pod requests."""
        return np.array([r.total_gpu_milli for r in self.requests], dtype=np.int64)


def _int(value: str | None) -> int:
    if value is None or value.strip() in ("", "nan"):
        return 0
    return int(float(value))


def load_nodes(path: Path) -> list[NodeSpec]:
    with path.open(newline="") as f:
        return [
            NodeSpec(
                name=row["sn"],
                cpu_milli=_int(row["cpu_milli"]),
                memory_mib=_int(row["memory_mib"]),
                num_gpu=_int(row.get("gpu")),
                gpu_model=(row.get("model") or "").strip(),
            )
            for row in csv.DictReader(f)
        ]


def load_pods(path: Path) -> PodTrace:
    names: list[str] = []
    requests: list[PodRequest] = []
    times: list[tuple[int, int, int]] = []
    cache: dict[tuple[int, int, int, int, str], PodRequest] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            num = _int(row["num_gpu"])
            key = (
                _int(row["cpu_milli"]),
                _int(row["memory_mib"]),
                num,
                _int(row["gpu_milli"]) if num else 0,
                row.get("gpu_spec") or "",
            )
            if key not in cache:
                cache[key] = PodRequest(key[0], key[1], key[2], key[3], parse_models(key[4]))
            names.append(row["name"])
            requests.append(cache[key])
            times.append(
                (
                    _int(row.get("creation_time")),
                    _int(row.get("deletion_time")),
                    _int(row.get("scheduled_time")),
                )
            )
    t = np.array(times, dtype=np.int64).reshape(-1, 3)
    return PodTrace(tuple(names), tuple(requests), t[:, 0], t[:, 1], t[:, 2])


def renamed(nodes: list[NodeSpec], seed: int) -> list[NodeSpec]:
    """The nodes renamed as the FGD authors' simulator renames them before a run.

    Their simulator sorts the nodes by name, draws a seeded permutation and prefixes node
    ``i``'s name with ``"%04d-" % perm[i]`` (``syncClusterResourceList`` in
    ``pkg/simulator/simulator.go``); their scheduler then breaks ties by name. So ties go
    to the first node of a random order fixed for the run, whichever policy runs. cnai's
    policies break ties by name too, so giving them these names reproduces that.
    """
    ordered = sorted(nodes, key=lambda n: n.name)
    perm = np.random.default_rng([seed, 2]).permutation(len(ordered))
    return [replace(n, name=f"{int(p):04d}-{n.name}") for n, p in zip(ordered, perm, strict=True)]
