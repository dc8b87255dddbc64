"""FGD-packed: FGD whose ties are broken by packing (cnai's own policy).

FGD's integer score ``int(sigmoid(d/1000)*100)`` makes many candidate nodes tie; FGD
then takes the node whose name sorts first. FGD-packed keeps FGD's score (finer, exact
scores measured worse: the coarse score is itself a useful regulariser) and breaks its
ties by best-fit (the node left with the least free CPU and GPU), then by name; on a
node a fractional pod takes the best-scoring device, the tightest one on ties. Measured
in docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnai.scheduling.placement.best_fit import leftover
from cnai.scheduling.placement.fgd import F64, FGD, I64, _Scores, quantize
from cnai.scheduling.placement.request import PodRequest
from cnai.scheduling.placement.snapshot import ClusterSnapshot


@dataclass
class FGDPacked(FGD):
    name: str = "fgd-packed"

    def device_key(self, delta: F64, gpu_free: I64) -> F64:
        # gpu_free <= 1000: scaled below one score point it only orders ties.
        return quantize(delta) - gpu_free * 1e-4

    def node_key(
        self, snapshot: ClusterSnapshot, pod: PodRequest, candidates: I64, scores: _Scores
    ) -> F64:
        # leftover is in [0, 1]: scaled below one score point it only orders ties.
        return scores.key[candidates] - leftover(snapshot, pod, candidates) * 0.5
