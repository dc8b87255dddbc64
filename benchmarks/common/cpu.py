"""CPU accounting around a measured window, to tell a slow server from a busy machine.

Other work on the machine (this is a shared 2-core box) takes CPU from the server even
when it is pinned, so besides wall-clock rates the benchmark reports the CPU time the
server itself used (``/proc/PID/stat``) and how busy its CPU was with other processes
(``/proc/stat``) over the same window. Creates per server CPU-second hardly depend on
such interference; creates per wall second do.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_busy_s(cpu: int | None) -> float:
    """Busy (non-idle, non-iowait) seconds of one CPU, or of all together for None."""
    label = "cpu" if cpu is None else f"cpu{cpu}"
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0] == label:
                values = [int(v) for v in parts[1:]]
                return (sum(values[:8]) - values[3] - values[4]) / TICKS
    return 0.0


@dataclass
class CpuWindow:
    """Server CPU time and its CPU's total busy time between :meth:`start` and :meth:`end`."""

    pid: int
    cpu: int | None
    wall0: float = 0.0
    proc0: float = 0.0
    busy0: float = 0.0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    cpu_busy_s: float = 0.0

    def start(self) -> CpuWindow:
        self.wall0 = time.perf_counter()
        self.proc0 = process_cpu_s(self.pid)
        self.busy0 = cpu_busy_s(self.cpu)
        return self

    def end(self) -> CpuWindow:
        self.wall_s = time.perf_counter() - self.wall0
        self.server_cpu_s = process_cpu_s(self.pid) - self.proc0
        self.cpu_busy_s = cpu_busy_s(self.cpu) - self.busy0
        return self

    def to_dict(self, work: int) -> dict[str, Any]:
        other = max(0.0, self.cpu_busy_s - self.server_cpu_s)
        return {
            "wall_s": round(self.wall_s, 3),
            "server_cpu_s": round(self.server_cpu_s, 3),
            "server_cpu_share": round(self.server_cpu_s / self.wall_s, 3) if self.wall_s else 0,
            "other_on_server_cpu_share": round(other / self.wall_s, 3) if self.wall_s else 0,
            "creates_per_server_cpu_s": round(work / self.server_cpu_s, 1)
            if self.server_cpu_s
            else 0,
        }
