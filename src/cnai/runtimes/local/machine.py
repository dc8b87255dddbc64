"""This machine as a Node: its name, its cpu and memory capacity, and its GPUs.

Capacity is what this process may really use: the cpus of its affinity mask, lowered by
a cgroup cpu quota; MemTotal, lowered by a cgroup memory limit (any in its cgroup's
lineage). GPUs come from NVML (pynvml, used only if it is installed) or nvidia-smi.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cnai.core.quantity import format_bytes
from cnai.core.runtime import NodeInfo
from cnai.runtimes.local import cgroupfs

NVIDIA_SMI_QUERY = (
    "nvidia-smi",
    "--query-gpu=index,name,uuid,memory.total",
    "--format=csv,noheader,nounits",
)
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class GPU:
    """One GPU, as the Node's status lists it."""

    index: int
    name: str
    uuid: str
    memory_bytes: int

    def to_status(self) -> dict[str, object]:
        """The wire form of :class:`cnai.core.pods.GPUDevice`."""
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "memoryBytes": self.memory_bytes,
        }


def node_name(hostname: str | None = None) -> str:
    """The short hostname as a DNS-1123 label (``My_Box.lan`` -> ``my-box``)."""
    short = (hostname if hostname is not None else socket.gethostname()).split(".")[0]
    label = re.sub(r"[^a-z0-9-]+", "-", short.lower()).strip("-")[:63].strip("-")
    return label or "localhost"


def _lineage_files(version: int, controller: str, name: str) -> list[str]:
    """The contents of ``name`` in this process's cgroup and each ancestor."""
    mount = cgroupfs.find_mount(version, controller)
    own = cgroupfs.own_dir(mount, controller) if mount else None
    if mount is None or own is None:
        return []
    texts = []
    for directory in cgroupfs.lineage(own, mount):
        with contextlib.suppress(OSError):
            texts.append((directory / name).read_text().strip())
    return texts


def _cpu_quota_millicores() -> int | None:
    quotas = []
    for text in _lineage_files(2, "cpu", "cpu.max"):
        quota, _, period = text.partition(" ")
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            quotas.append(int(quota) * 1000 // int(period))
    v1_quota = _lineage_files(1, "cpu", "cpu.cfs_quota_us")
    v1_period = _lineage_files(1, "cpu", "cpu.cfs_period_us")
    for quota, period in zip(v1_quota, v1_period, strict=False):
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            quotas.append(int(quota) * 1000 // int(period))
    return min(quotas) if quotas else None


def cpu_millicores() -> int:
    """Cpus this process may use, in thousandths."""
    cpus = len(os.sched_getaffinity(0)) * 1000
    quota = _cpu_quota_millicores()
    return max(1, min(cpus, quota)) if quota else cpus


def format_cpu(millicores: int) -> str:
    """A cpu quantity: ``2`` or ``1500m``."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_bytes() -> int:
    """MemTotal, or the lowest cgroup memory limit above this process if lower."""
    total = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024
    limits = _lineage_files(2, "memory", "memory.max")
    limits += _lineage_files(1, "memory", "memory.limit_in_bytes")
    lowest = min((int(v) for v in limits if v.isdigit()), default=total)
    # An unlimited v1 cgroup reports a huge number, which min() leaves out.
    return min(total, lowest) if total else lowest


def parse_nvidia_smi(text: str) -> list[GPU]:
    """GPUs from ``nvidia-smi`` CSV output (see NVIDIA_SMI_QUERY; memory in MiB)."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4 and parts[0].isdigit():
            memory = int(parts[3]) * 2**20 if parts[3].isdigit() else 0
            gpus.append(GPU(int(parts[0]), parts[1], parts[2], memory))
    return gpus


def _nvml_gpus() -> list[GPU] | None:
    try:
        nvml = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        nvml.nvmlInit()
    except Exception:  # NVMLError: no driver here; nvidia-smi gets its chance
        return None
    try:
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name, uuid = nvml.nvmlDeviceGetName(handle), nvml.nvmlDeviceGetUUID(handle)
            gpus.append(
                GPU(
                    index,
                    name.decode() if isinstance(name, bytes) else str(name),
                    uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
                )
            )
        return gpus
    except Exception:  # NVMLError on one device: fall back to nvidia-smi
        return None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def _nvidia_smi_gpus(timeout: float) -> list[GPU]:
    if shutil.which(NVIDIA_SMI_QUERY[0]) is None:
        return []
    try:
        done = subprocess.run(
            NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else []


def detect_gpus(timeout: float = 5.0) -> list[GPU]:
    """This machine's GPUs (blocking: run it in a thread)."""
    found = _nvml_gpus()
    return found if found is not None else _nvidia_smi_gpus(timeout)


def node_info(name: str, gpus: list[GPU], memory_enforcement: str) -> NodeInfo:
    """The Node that describes this machine."""
    capacity = {
        "cpu": format_cpu(cpu_millicores()),
        "memory": format_bytes(memory_bytes()),
        "gpu": str(len(gpus)),
    }
    arch = platform.machine()
    return NodeInfo(
        name=name,
        capacity=capacity,
        allocatable=dict(capacity),
        gpus=[g.to_status() for g in gpus],
        memory_enforcement=memory_enforcement,
        labels={
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": _ARCH.get(arch, arch.lower()),
        },
    )
