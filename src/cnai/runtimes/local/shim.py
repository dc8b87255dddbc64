"""The pod supervisor (a shim, as containerd has): one process per pod that outlives the
platform and records how the pod's process ended.

The runtime starts it as ``python -m cnai.runtimes.local.shim POD_DIR`` (in practice
through ``runtime.SHIM_BOOTSTRAP``, which skips importing ``cnai``), in a new session,
with the launch spec as JSON on stdin. One run:

1. read the spec, fork, and let the parent exit: the runtime reaps that parent at once
   and init adopts the shim; in its own session, neither a Ctrl-C to the platform's
   process group nor the platform's death reaches it;
2. take the pod's lock (a second shim for the same pod gives up) and do nothing if the
   pod already ran (``child.pid`` or ``status.json`` exist);
3. start the process in its own session and process group, with its env and working
   directory, output appended to ``output.log``, inside its cgroup when one enforces
   memory;
4. supervise it: reap it, run the RSS watchdog, honour a stop request (the ``stop`` file,
   or SIGTERM/SIGINT to the shim): SIGTERM to the group, SIGKILL after the grace period;
5. kill what is left of the group, write ``status.json`` atomically, remove the cgroup.

Standard library and sibling modules only, imported relatively.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from .exits import START_FAILED_EXIT, ExitStatus, classify, start_error
from .layout import PodDir, acquire_lock
from .memory import CGROUP_V1, CGROUP_V2, Cgroup, RssWatchdog, describe_bytes, prepare_parent
from .procfs import signal_group

POLL_SECONDS = 0.05
LOCK_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class ShimSpec:
    """What the shim needs to run a pod (the runtime's PodLaunch, resolved)."""

    uid: str
    command: list[str]
    working_dir: str
    env: dict[str, str] = field(default_factory=dict)
    memory_limit_bytes: int | None = None
    gpu_indices: list[int] = field(default_factory=list)
    grace_seconds: float = 30.0
    memory_enforcement: str = "rss"
    cgroup_parent: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShimSpec:
        limit = data.get("memoryLimitBytes")
        return cls(
            uid=str(data["uid"]),
            command=[str(c) for c in data.get("command", [])],
            working_dir=str(data["workingDir"]),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            memory_limit_bytes=int(limit) if limit else None,
            gpu_indices=[int(i) for i in data.get("gpuIndices", [])],
            grace_seconds=float(data.get("graceSeconds", 30.0)),
            memory_enforcement=str(data.get("memoryEnforcement", "rss")),
            cgroup_parent=str(data.get("cgroupParent", "")),
        )


class StartFailure(Exception):
    """The process could not be started; ``code`` and message go to status.json."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def child_env(
    base: Mapping[str, str],
    pod_env: Mapping[str, str],
    gpu_indices: list[int],
    python_bin: str = "",
) -> dict[str, str]:
    """The process's environment: the platform's, with the directory of its Python
    (``python_bin``) first on PATH, so ``python``, ``torchrun`` and ``cnai`` in a pod are
    the platform's environment's as if it were activated; without the platform's own
    CNAI_* settings (its token among them); overlaid with the pod's variables.
    CUDA_VISIBLE_DEVICES always pins the pod to its GPUs ("" for none).
    """
    env = {k: v for k, v in base.items() if not k.startswith("CNAI_")}
    if python_bin:
        rest = [d for d in env.get("PATH", os.defpath).split(os.pathsep) if d and d != python_bin]
        env["PATH"] = os.pathsep.join([python_bin, *rest])
    env.update(pod_env)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_indices)
    return env


def _now() -> datetime:
    return datetime.now(UTC)


def note(message: str) -> None:
    """A line in shim.log (diagnostics only; never env values)."""
    print(f"{_now().isoformat()} {message}", file=sys.stderr, flush=True)


class Shim:
    """Supervises one pod's process (see the module docstring)."""

    def __init__(self, pod: PodDir, spec: ShimSpec) -> None:
        self.pod = pod
        self.spec = spec
        self.cgroup: Cgroup | None = None
        self.watchdog: RssWatchdog | None = None
        self._signalled = False

    def run(self) -> int:
        lock = acquire_lock(self.pod.lock, LOCK_WAIT_SECONDS)
        if lock is None:
            note("another shim supervises this pod; exiting")
            return 0
        try:
            if self.pod.status.exists() or self.pod.child_pid.exists():
                note("this pod was started before; exiting")
                return 0
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._on_stop_signal)
            # A handler, not SIG_IGN: an ignored signal would stay ignored in the child.
            signal.signal(signal.SIGHUP, lambda signum, frame: None)
            self.pod.write_value(self.pod.shim_pid, os.getpid())
            self.pod.write_status(self._run_pod())
        finally:
            os.close(lock)
        return 0

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signalled = True

    def _run_pod(self) -> ExitStatus:
        try:
            self._enforce_memory()
            started = _now()
            proc = self._start()
        except StartFailure as exc:
            note(f"start failed: {exc.message}")
            self._remove_cgroup()
            return ExitStatus(exc.code, "StartError", exc.message, None, _now())
        self.pod.write_value(self.pod.child_pid, proc.pid)
        self.pod.write_value(self.pod.started, started.isoformat())
        note(f"started pid {proc.pid}")
        code: int | None
        try:
            code, reason, message = self._supervise(proc)
        except Exception as exc:  # a bug here must still leave a record and no orphans
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            code, reason, message = None, "Unknown", f"the pod's supervisor failed: {exc!r}"
        finally:
            self._remove_cgroup()
        note(f"ended: exit code {code}, {reason}")
        return ExitStatus(code, reason, message, started, _now())

    def _enforce_memory(self) -> None:
        limit, mode = self.spec.memory_limit_bytes, self.spec.memory_enforcement
        if not limit:
            return
        if mode in (CGROUP_V1, CGROUP_V2):
            try:
                parent = Path(self.spec.cgroup_parent)
                prepare_parent(mode, parent)
                self.cgroup = Cgroup.create(mode, parent, self.pod.uid, limit)
                self.pod.write_value(self.pod.cgroup, self.cgroup.path)
                return
            except OSError as exc:
                note(f"{mode} unusable ({exc}); the RSS watchdog enforces the limit")
        self.watchdog = RssWatchdog(limit)

    def _start(self) -> subprocess.Popen[bytes]:
        command, cwd = self.spec.command, self.spec.working_dir
        if not command:
            raise StartFailure(START_FAILED_EXIT, "the pod has no command")
        if not os.path.isdir(cwd):
            raise StartFailure(START_FAILED_EXIT, f"working directory {cwd!r} does not exist")
        python_bin = os.path.dirname(sys.executable)
        env = child_env(os.environ, self.spec.env, self.spec.gpu_indices, python_bin)
        with open(self.pod.log, "ab") as out:
            try:
                return subprocess.Popen(
                    command,
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stop reaches all of it
                    preexec_fn=self.cgroup.join if self.cgroup else None,
                )
            except subprocess.SubprocessError:  # raised when preexec_fn failed
                raise StartFailure(
                    START_FAILED_EXIT, "could not move the process into its memory cgroup"
                ) from None
            except OSError as exc:
                raise StartFailure(*start_error(exc, command[0])) from None

    def _requested_grace(self) -> float | None:
        """The grace period of a stop request, if one was made (the shortest wins)."""
        asked = [self.pod.read_stop()]
        if self._signalled:
            asked.append(self.spec.grace_seconds)
        values = [g for g in asked if g is not None]
        return min(values) if values else None

    def _supervise(self, proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
        pgid = proc.pid
        stop_seen: float | None = None
        grace: float | None = None
        killed_on_stop = False
        oom_message: str | None = None
        while (returncode := proc.poll()) is None:
            now = time.monotonic()
            requested = self._requested_grace()
            if requested is not None and not killed_on_stop:
                grace = requested if grace is None else min(grace, requested)
                if stop_seen is None:
                    stop_seen = now
                    note(f"stop requested, grace period {grace:g}s")
                    if grace > 0:
                        signal_group(pgid, signal.SIGTERM)
                if now >= stop_seen + grace:
                    signal_group(pgid, signal.SIGKILL)
                    killed_on_stop = True
            if self.watchdog and oom_message is None:
                rss = self.watchdog.over_limit(pgid, now)
                if rss is not None:
                    signal_group(pgid, signal.SIGKILL)
                    oom_message = (
                        f"memory limit {describe_bytes(self.watchdog.limit)} exceeded: "
                        f"{describe_bytes(rss)} resident, killed by the RSS watchdog"
                    )
            time.sleep(POLL_SECONDS)
        # As in a container, the rest of the group ends with its main process.
        signal_group(pgid, signal.SIGKILL)
        if self.cgroup and oom_message is None and self.cgroup.oom_killed(returncode):
            limit = describe_bytes(self.spec.memory_limit_bytes or 0)
            oom_message = (
                f"memory limit {limit} exceeded: killed by the kernel ({self.cgroup.mode})"
            )
        return classify(
            returncode, oom_message=oom_message, killed_on_stop=killed_on_stop, grace_seconds=grace
        )

    def _remove_cgroup(self) -> None:
        if self.cgroup and not self.cgroup.remove():
            note(f"cgroup {self.cgroup.path} stayed busy; the runtime removes it with the pod")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m cnai.runtimes.local.shim POD_DIR < spec.json", file=sys.stderr)
        return 2
    spec = ShimSpec.from_json(json.loads(sys.stdin.buffer.read()))
    # uvloop's subprocess spawn ignores close_fds, so the shim may have inherited the
    # platform's inheritable descriptors (its listening socket, client connections);
    # held for the pod's whole life, they would keep the port bound after the platform
    # stopped or died, and a restart could not listen again.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    if os.fork():
        os._exit(0)  # the runtime reaps this parent at once; init adopts the shim
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return Shim(PodDir(Path(argv[0])), spec).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
