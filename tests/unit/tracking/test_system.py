"""System metrics sampled from /proc on this machine (GPUs only where NVML finds them)."""

from __future__ import annotations

import threading

from cnai.tracking.system import SystemMonitor


class _Recorder:
    def __init__(self) -> None:
        self.logged: list[tuple[int, dict[str, float]]] = []
        self.twice = threading.Event()

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        self.logged.append((step, metrics))
        if len(self.logged) >= 2:
            self.twice.set()


def test_cpu_and_memory_are_sampled_with_mlflows_names() -> None:
    monitor = SystemMonitor(_Recorder())
    sum(i * i for i in range(200_000))  # some CPU time between the two readings
    sample = monitor.sample()
    assert 0.0 <= sample["system/cpu_utilization_percentage"] <= 100.0
    assert sample["system/system_memory_usage_megabytes"] > 0
    assert 0.0 < sample["system/system_memory_usage_percentage"] < 100.0
    assert all(k.startswith("system/") for k in sample)


def test_the_monitor_logs_at_each_interval_until_stopped() -> None:
    recorder = _Recorder()
    monitor = SystemMonitor(recorder, interval=0.05).start()
    assert recorder.twice.wait(timeout=10)
    monitor.stop()
    count = len(recorder.logged)
    assert [step for step, _ in recorder.logged[:2]] == [0, 1]
    threading.Event().wait(0.2)
    assert len(recorder.logged) == count  # nothing after stop
