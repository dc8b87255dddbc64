"""System metrics of a run: CPU, memory and, where NVIDIA GPUs and NVML are present,
GPU utilization and memory, sampled in a background thread and logged as metrics.

The names are MLflow's (``system/cpu_utilization_percentage``,
``system/system_memory_usage_megabytes``, ``system/gpu_0_utilization_percentage``, ...),
so charts and tools that know MLflow's system metrics read cnai's. CPU and memory come
from ``/proc`` (Linux); GPUs from NVML (``pynvml``) when it can be imported and finds a
device, and are silently absent otherwise.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("cnai.tracking.system")

PROC = Path("/proc")


class _Logs(Protocol):
    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None: ...


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot."""
    try:
        fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal; guest and guest_nice that follow
    # are already counted in user and nice.
    values = [int(v) for v in fields[:8]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def _memory_mb() -> tuple[float, float] | None:
    """(used, total) MB of system memory."""
    try:
        info = dict(line.split(":", 1) for line in (PROC / "meminfo").read_text().splitlines())
    except (OSError, ValueError):
        return None
    total = int(info["MemTotal"].split()[0]) / 1024
    available = int(info.get("MemAvailable", info["MemFree"]).split()[0]) / 1024
    return total - available, total


class _Gpus:
    """NVML's view of the GPUs, or nothing when NVML is missing."""

    def __init__(self) -> None:
        self.nvml: Any = None
        self.handles: list[Any] = []
        try:
            import pynvml  # type: ignore[import-not-found,import-untyped,unused-ignore]

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
        except Exception:  # no NVML, no driver or no device: no GPU metrics
            self.handles = []

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i, handle in enumerate(self.handles):
            try:
                use = self.nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self.nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception as exc:  # a device that went away: skip it this time
                log.debug("GPU %d unreadable: %s", i, exc)
                continue
            out[f"system/gpu_{i}_utilization_percentage"] = float(use.gpu)
            out[f"system/gpu_{i}_memory_usage_megabytes"] = mem.used / 2**20
            out[f"system/gpu_{i}_memory_usage_percentage"] = 100.0 * mem.used / mem.total
        return out


class SystemMonitor:
    """Logs system metrics to ``run`` every ``interval`` seconds until stopped."""

    def __init__(self, run: _Logs, interval: float = 10.0) -> None:
        self.run, self.interval = run, interval
        self._stop = threading.Event()
        self._gpus = _Gpus()
        self._last_cpu = _cpu_times()
        self._step = 0
        self._thread = threading.Thread(target=self._loop, name="cnai-system-metrics", daemon=True)

    def start(self) -> SystemMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def sample(self) -> dict[str, float]:
        """One sample of every metric available here."""
        out: dict[str, float] = {}
        now = _cpu_times()
        if now is not None and self._last_cpu is not None:
            busy, total = now[0] - self._last_cpu[0], now[1] - self._last_cpu[1]
            if total > 0:
                # iowait may go backwards (proc(5)), so one interval can read outside 0-100.
                share = min(max(busy / total, 0.0), 1.0)
                out["system/cpu_utilization_percentage"] = 100.0 * share
        self._last_cpu = now
        memory = _memory_mb()
        if memory is not None:
            used, total_mb = memory
            out["system/system_memory_usage_megabytes"] = used
            out["system/system_memory_usage_percentage"] = 100.0 * used / total_mb
        out.update(self._gpus.sample())
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run.log_metrics(self.sample(), step=self._step)
            except Exception as exc:  # the run ended: nothing more to log
                log.debug("system metrics stopped: %s", exc)
                return
            self._step += 1
