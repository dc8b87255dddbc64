"""Memory limits with real processes: the RSS watchdog and, where this machine allows,
cgroup v2 or v1; over the limit is OOMKilled with exit code 137."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnai.runtimes.local import LocalRuntime
from cnai.runtimes.local.memory import RSS, detect

from .builders import make_pod, wait_exited

pytestmark = pytest.mark.anyio

MiB = 2**20
# Touches every page (bytes * n writes them), then waits to be killed.
HOG = "import time\nhog = b'x' * (200 << 20)\ntime.sleep(30)\n"


def _cgroup_mode() -> str:
    mode = detect("auto").mode
    if mode == RSS:
        print("no usable cgroup memory controller here (needs cgroup v2 or v1, as root)")
        pytest.skip("no usable cgroup memory controller here (cgroup v2 or v1, as root)")
    return mode


async def test_over_the_limit_with_the_rss_watchdog_is_oomkilled(runtime: LocalRuntime) -> None:
    pod = make_pod().python(HOG).memory(64 * MiB).build()
    await runtime.launch(pod)
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.exit_code, seen.reason) == (137, "OOMKilled")
    assert "RSS watchdog" in seen.message


async def test_over_the_limit_with_a_cgroup_is_oomkilled(pods_root: Path) -> None:
    mode = _cgroup_mode()
    runtime = LocalRuntime(pods_root, memory_enforcement=mode)
    pod = make_pod().python(HOG).memory(64 * MiB).build()
    await runtime.launch(pod)
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.exit_code, seen.reason) == (137, "OOMKilled")
    assert mode in seen.message
    cgroup = Path((pods_root / pod.uid / "cgroup").read_text().strip())
    assert not cgroup.exists()  # removed once the pod ended


@pytest.mark.parametrize("mode", ["rss", "auto"], ids=["rss-watchdog", "best-available"])
async def test_under_the_limit_completes(pods_root: Path, mode: str) -> None:
    runtime = LocalRuntime(pods_root, memory_enforcement=mode)
    pod = make_pod().python("data = b'x' * (8 << 20)").memory(256 * MiB).build()
    await runtime.launch(pod)
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.exit_code, seen.reason) == (0, "Completed")


def test_forcing_rss_needs_no_privileges() -> None:
    assert detect("rss").mode == RSS


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="cgroup-v2"):
        detect("cgroups please")
