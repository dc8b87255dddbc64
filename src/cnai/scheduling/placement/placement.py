"""The answer of placement: which node, which devices, how much of each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Node index in the snapshot, the GPU device indices used, milli-GPU on each."""

    node: int
    gpus: tuple[int, ...] = ()
    gpu_milli: int = 0  # per device in ``gpus``
