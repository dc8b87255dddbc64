"""LocalRuntime: the Runtime protocol over processes on this machine.

Each pod runs under its own shim (:mod:`.shim`), detached from the platform, and all
state lives in the pod's directory (:mod:`.layout`). The runtime only starts shims and
reads and writes those files, so a new LocalRuntime over the same root, as after the
platform was SIGKILLed and restarted, adopts what is there: a pod whose shim still holds
its lock is running (and is not started again), and a pod that ended meanwhile has the
exit status its shim recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from cnai.core.runtime import NodeInfo, Observation, PodLaunch, ProcessState
from cnai.runtimes.local import machine, memory, procfs
from cnai.runtimes.local.exits import START_FAILED_EXIT, ExitStatus
from cnai.runtimes.local.layout import PodDir, check_uid

log = logging.getLogger(__name__)

# Runs the shim as a module of a stand-in package over this directory, so its process
# does not import cnai/__init__ (the HTTP client and pydantic): about 11 MB and 15 ms
# per pod instead of 40 MB and 250 ms. `python -m cnai.runtimes.local.shim` is the same.
SHIM_BOOTSTRAP = (
    "import sys, types\n"
    "pkg = types.ModuleType('cnai_local_shim')\n"
    "pkg.__path__ = [sys.argv.pop(1)]\n"
    "sys.modules[pkg.__name__] = pkg\n"
    "from cnai_local_shim.shim import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
START_TIMEOUT_SECONDS = 10.0
REMOVE_TIMEOUT_SECONDS = 5.0
LOG_POLL_SECONDS = 0.05
LOG_CHUNK_BYTES = 64 * 1024


def _read_chunk(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(LOG_CHUNK_BYTES)
    except FileNotFoundError:
        return b""


def _last_line(path: Path) -> str:
    try:
        tail = _read_chunk(path, max(0, path.stat().st_size - 500))
    except OSError:
        return "no output"
    lines = tail.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


class LocalRuntime:
    """Pods as supervised processes, one directory per pod under ``root``."""

    name = "local"

    def __init__(
        self, root: Path, *, node_name: str | None = None, memory_enforcement: str = "auto"
    ) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.enforcement = memory.detect(memory_enforcement)
        self.node_name = node_name or machine.node_name()
        self._gpus: list[machine.GPU] | None = None

    def _pod(self, uid: str) -> PodDir:
        return PodDir(self.root / check_uid(uid))

    def _existing(self, uid: str) -> PodDir | None:
        try:
            pod = self._pod(uid)
        except ValueError:
            return None
        return pod if pod.exists() else None

    # -- launch ------------------------------------------------------------------

    async def launch(self, pod: PodLaunch) -> None:
        d = self._pod(pod.uid)
        if d.status.exists() or d.child_pid.exists() or d.shim_alive():
            return  # started before (by this instance or an earlier one)
        d.create()
        spec = self._shim_spec(pod)
        d.write_spec({k: v for k, v in spec.items() if k != "env"} | {"envNames": sorted(pod.env)})
        if await self._spawn_shim(d, spec):
            await self._wait_until(lambda: d.started.exists() or d.status.exists())

    def _shim_spec(self, pod: PodLaunch) -> dict[str, Any]:
        """The shim's spec (keep in sync with shim.ShimSpec). Env values travel only here."""
        return {
            "uid": pod.uid,
            "namespace": pod.namespace,
            "name": pod.name,
            "command": list(pod.command),
            "env": dict(pod.env),
            # Without a working directory a pod runs where the platform runs.
            "workingDir": os.path.abspath(os.path.expanduser(pod.working_dir or ".")),
            "memoryLimitBytes": pod.memory_limit_bytes,
            "cpuRequest": pod.cpu_request,
            "gpuIndices": list(pod.gpu_indices),
            "graceSeconds": pod.grace_seconds,
            "memoryEnforcement": self.enforcement.mode,
            "cgroupParent": self.enforcement.parent,
        }

    async def _spawn_shim(self, d: PodDir, spec: dict[str, Any]) -> bool:
        """Start the shim in a new session; False (and a StartError recorded) if it fails."""
        here = str(Path(__file__).parent)
        try:
            with open(d.shim_log, "ab") as shim_log:
                proc = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-I", "-c", SHIM_BOOTSTRAP, here, str(d.path)),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=shim_log,
                    start_new_session=True,
                    cwd="/",
                )
            # The first shim process forks and exits at once: this reaps it.
            await proc.communicate(json.dumps(spec).encode())
            failed = proc.returncode != 0
        except OSError as exc:
            log.warning("pod %s: cannot start its supervisor: %s", d.uid, exc)
            failed = True
        if failed and not d.status.exists():
            message = f"the pod's supervisor did not start: {_last_line(d.shim_log)}"
            d.write_status(ExitStatus(START_FAILED_EXIT, "StartError", message))
        return not failed

    async def _wait_until(
        self, done: Callable[[], bool], timeout: float = START_TIMEOUT_SECONDS
    ) -> bool:
        """Poll ``done`` with short sleeps (never blocking the loop) for up to ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- stop, observe, remove ---------------------------------------------------

    async def stop(self, uid: str, grace_seconds: float) -> None:
        d = self._existing(uid)
        if d is None or d.status.exists():
            return
        d.request_stop(grace_seconds)  # the shim runs the grace timer, platform or not
        if d.shim_alive():
            return
        pgid = d.read_pid(d.child_pid)
        if pgid is None or not procfs.group_alive(pgid):
            return
        # The shim is lost but the process lives: signal its group from here.
        if grace_seconds <= 0:
            procfs.signal_group(pgid, signal.SIGKILL)
            return
        procfs.signal_group(pgid, signal.SIGTERM)
        asyncio.get_running_loop().call_later(
            grace_seconds, procfs.signal_group, pgid, signal.SIGKILL
        )

    async def observe(self, uid: str) -> Observation:
        d = self._existing(uid)
        return self._observe(d) if d else Observation(ProcessState.NOT_FOUND)

    def _observe(self, d: PodDir) -> Observation:
        status = d.read_status()
        if status is not None:
            return _exited(status)
        started = d.read_started()
        if d.shim_alive():
            return Observation(ProcessState.RUNNING, started_at=started)
        pgid = d.read_pid(d.child_pid)
        if pgid is None:
            # No process was ever started: a launch that did not get that far.
            return Observation(ProcessState.NOT_FOUND)
        if procfs.group_alive(pgid):
            return Observation(ProcessState.RUNNING, started_at=started)
        status = d.read_status()  # the shim may have finished since the first read
        if status is not None:
            return _exited(status)
        return Observation(
            ProcessState.EXITED,
            reason="Unknown",
            message="the pod's supervisor was lost before it recorded how the process ended",
            started_at=started,
        )

    async def known_pods(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    async def remove(self, uid: str) -> None:
        d = self._existing(uid)
        if d is None:
            return
        if d.shim_alive():
            d.request_stop(0)
            if not await self._wait_until(lambda: not d.shim_alive(), REMOVE_TIMEOUT_SECONDS):
                shim_pid = d.read_pid(d.shim_pid)
                if shim_pid is not None:
                    procfs.kill(shim_pid)
        pgid = d.read_pid(d.child_pid)
        if pgid is not None:
            procfs.signal_group(pgid, signal.SIGKILL)
        cgroup = d.read_cgroup()
        if cgroup is not None:
            await asyncio.to_thread(memory.Cgroup(cgroup, self.enforcement.mode).remove)
        await asyncio.to_thread(shutil.rmtree, d.path, ignore_errors=True)

    # -- logs and node -------------------------------------------------------------

    async def logs(
        self, uid: str, *, follow: bool = False, offset: int = 0
    ) -> AsyncIterator[bytes]:
        d = self._existing(uid)
        if d is None:
            return
        position = max(0, offset)
        while True:
            # Decide "ended" before reading: all output written until then is read below.
            ended = not follow or self._observe(d).state is not ProcessState.RUNNING
            while chunk := _read_chunk(d.log, position):
                position += len(chunk)
                yield chunk
            if ended:
                return
            await asyncio.sleep(LOG_POLL_SECONDS)

    async def node(self) -> NodeInfo:
        if self._gpus is None:
            self._gpus = await asyncio.to_thread(machine.detect_gpus)
        return machine.node_info(self.node_name, self._gpus, self.enforcement.mode)


def _exited(status: ExitStatus) -> Observation:
    return Observation(
        ProcessState.EXITED,
        exit_code=status.exit_code,
        reason=status.reason,
        message=status.message,
        started_at=status.started_at,
        finished_at=status.finished_at,
    )
