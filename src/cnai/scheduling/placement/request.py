"""What one pod asks of a node: CPU, memory, whole or fractional GPUs, allowed GPU models.

A fractional GPU (``gpu: 0.25`` or ``gpu_milli: 250``) is a share of one device; several
fractional pods share a device while their milli-GPU sum stays within 1000. Several GPUs
are always whole devices (the Alibaba trace never asks for 2 x 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

MILLI = 1000  # milli-GPU in one device; keep in sync with snapshot.MILLI


@dataclass(frozen=True)
class PodRequest:
    """Resources one pod requests. ``gpu_milli`` is per GPU (1000 = a whole device)."""

    cpu_milli: int = 0
    memory_mib: int = 0
    num_gpu: int = 0
    gpu_milli: int = 0
    gpu_models: frozenset[str] = frozenset()  # empty: any model

    def __post_init__(self) -> None:
        if self.num_gpu < 0 or self.gpu_milli < 0 or self.gpu_milli > MILLI:
            raise ValueError(f"bad GPU request: {self.num_gpu} x {self.gpu_milli}m")
        if self.num_gpu > 1 and self.gpu_milli != MILLI:
            raise ValueError("a pod asking for several GPUs must ask for whole GPUs")
        if (self.num_gpu == 0) != (self.gpu_milli == 0):
            raise ValueError("num_gpu and gpu_milli must both be zero or both positive")

    @classmethod
    def of(
        cls, cpu: float = 0, memory_mib: int = 0, gpu: float = 0, models: str = ""
    ) -> PodRequest:
        """Build from user units: ``cpu`` in cores, ``gpu`` as 0.25 or 2, ``models`` as
        ``"V100M16|V100M32"`` (the trace's gpu_spec syntax)."""
        if gpu <= 0:
            num, milli = 0, 0
        elif gpu < 1:
            num, milli = 1, round(gpu * MILLI)
        else:
            if gpu != int(gpu):
                raise ValueError(f"more than one GPU must be a whole number, got {gpu}")
            num, milli = int(gpu), MILLI
        return cls(round(cpu * 1000), memory_mib, num, milli, parse_models(models))

    @property
    def is_shared(self) -> bool:
        """True for a fractional GPU: a share of one device."""
        return self.num_gpu == 1 and self.gpu_milli < MILLI

    @property
    def total_gpu_milli(self) -> int:
        return self.num_gpu * self.gpu_milli

    @property
    def shape(self) -> tuple[int, int, int, frozenset[str]]:
        """What placement scores depend on (memory only gates fit), used as a cache key."""
        return (self.cpu_milli, self.gpu_milli, self.num_gpu, self.gpu_models)


def parse_models(spec: str) -> frozenset[str]:
    """``"V100M16|V100M32"`` -> {"V100M16", "V100M32"}; ``""`` or ``"nan"`` -> any model."""
    if spec.strip().lower() in ("", "nan", "none"):
        return frozenset()
    return frozenset(part.strip() for part in spec.split("|") if part.strip())
