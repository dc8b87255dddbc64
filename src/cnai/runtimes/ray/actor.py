"""The Ray actor that runs one pod's process on a Ray worker: the Ray runtime's shim.

Imports only the standard library at the top (``ray`` inside functions, where it is
always there: this code runs in a Ray worker). The runtime ships this module to the
cluster by value (``cloudpickle.register_pickle_by_value``), so workers need no cnai.

The actor records what the platform must know in Ray's internal KV store (keys in
:mod:`.records`), not in its own memory: when the process started and on which Ray node,
then, once it ended, its output (the last ``LOG_KEEP_BYTES``) and its exit status. It
then kills itself, so an ended pod holds no cluster resources, and the runtime still
answers ``observe`` and ``logs`` for it, from any process, after any restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

# Keep in sync with records.py (this module must not import it: it travels by value).
KV_STARTED = "pod/{uid}/started"
KV_STATUS = "pod/{uid}/status"
KV_LOGS = "pod/{uid}/logs"
LOG_KEEP_BYTES = 4 * 1024 * 1024
START_FAILED_EXIT = 128


# The pod's process group leader, between the actor and the command (run as
# ``python -c GUARD <actor pid> <start-error file> <command...>``). Linux kills it with
# SIGUSR1 when the actor dies (PR_SET_PDEATHSIG: a lost Ray node, ``ray.kill``), and it
# then SIGKILLs its whole group, so no pod process outlives its actor. It ignores the
# group's SIGTERM (that is for the command) and ends as the command ended.
GUARD = """
import ctypes, os, signal, subprocess, sys
def kill_group(*_):
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGUSR1, kill_group)
signal.signal(signal.SIGTERM, lambda *_: None)
try:
    ctypes.CDLL(None).prctl(1, signal.SIGUSR1)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    kill_group()
try:
    child = subprocess.Popen(sys.argv[3:])
except OSError as exc:
    code = 127 if isinstance(exc, FileNotFoundError) else 128
    with open(sys.argv[2], "w") as f:
        f.write(f"cannot start {sys.argv[3]!r}: {exc}")
    print(f"cannot start {sys.argv[3]!r}: {exc}", file=sys.stderr)
    sys.exit(code)
while True:
    try:
        rc = child.wait()
        break
    except InterruptedError:
        continue
if rc < 0:
    signal.signal(-rc, signal.SIG_DFL)
    os.kill(os.getpid(), -rc)
sys.exit(rc)
"""


def _kv_put(key: str, value: bytes, namespace: str) -> None:
    from ray.experimental import internal_kv

    internal_kv._internal_kv_put(key, value, overwrite=True, namespace=namespace)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _classify(returncode: int, stopped: bool, grace: float) -> tuple[int, str, str]:
    """(exit code, reason, message) as Kubernetes reports them; keep in sync with
    local/exits.py, except that any signal death after a stop request is Killed."""
    code = 128 - returncode if returncode < 0 else returncode
    if code == 0:
        return 0, "Completed", ""
    if stopped and returncode < 0:
        how = "SIGKILL after the grace period" if returncode == -signal.SIGKILL else "SIGTERM"
        return code, "Killed", f"stopped: {how} ({grace:g}s grace)"
    if returncode < 0:
        return code, "Error", f"terminated by {signal.Signals(-returncode).name}"
    return code, "Error", ""


class PodProcess:
    """One pod's process, started in ``__init__`` in the actor's working directory."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import ray

        self.uid: str = spec["uid"]
        self.kv_namespace: str = spec["kvNamespace"]
        self.grace: float = float(spec.get("graceSeconds", 30.0))
        self.stopped = False
        self.dir = tempfile.mkdtemp(prefix=f"cnai-pod-{self.uid}-")
        self.log_path = os.path.join(self.dir, "output.log")
        self.started_at = time.time()
        self.proc: subprocess.Popen[bytes] | None = None
        self._start_failed = (START_FAILED_EXIT, "")
        # The pod's env came as runtime_env env_vars; the platform's own settings that
        # the Ray worker may have inherited (CNAI_TOKEN, ...) stay out, as on the local
        # runtime, unless the pod sets them itself.
        own = set(spec.get("envNames") or ())
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNAI_") or k in own}
        self.start_error = os.path.join(self.dir, "start-error")
        command = [sys.executable, "-I", "-c", GUARD, str(os.getpid()), self.start_error]
        with open(self.log_path, "wb") as out:
            try:
                self.proc = subprocess.Popen(
                    [*command, *spec["command"]],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    # The pod's workingDir: as Ray unpacked it here, or a path on this node.
                    cwd=spec.get("cwd") or os.getcwd(),
                    start_new_session=True,
                )
            except OSError as exc:  # no such cwd, say
                out.write(f"cannot start the pod: {exc}\n".encode())
                self._start_failed = (START_FAILED_EXIT, f"cannot start the pod: {exc}")
        started = {
            "nodeId": ray.get_runtime_context().get_node_id(),
            "startedAt": self.started_at,
            "pid": self.proc.pid if self.proc else None,
        }
        _kv_put(KV_STARTED.format(uid=self.uid), json.dumps(started).encode(), self.kv_namespace)
        threading.Thread(target=self._watch, name="cnai-pod-watch", daemon=True).start()

    def _watch(self) -> None:
        """Wait for the process; record its output and status; end this actor."""
        if self.proc is None:
            code, message = self._start_failed
            status = {"exitCode": code, "reason": "StartError", "message": message}
        else:
            returncode = self.proc.wait()
            code, reason, message = _classify(returncode, self.stopped, self.grace)
            if os.path.exists(self.start_error):
                with open(self.start_error) as f:
                    reason, message = "StartError", f.read()
            status = {"exitCode": code, "reason": reason, "message": message}
        size = os.path.getsize(self.log_path)
        log_from = max(0, size - LOG_KEEP_BYTES)
        status |= {"startedAt": self.started_at, "finishedAt": time.time(), "logsFrom": log_from}
        # Logs first: once the status is there, readers take the logs from the store.
        _kv_put(KV_LOGS.format(uid=self.uid), self.read_logs(log_from, size), self.kv_namespace)
        _kv_put(KV_STATUS.format(uid=self.uid), json.dumps(status).encode(), self.kv_namespace)
        self._exit()

    def _exit(self) -> None:
        import shutil

        import ray

        shutil.rmtree(self.dir, ignore_errors=True)
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    def read_logs(self, offset: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the output from byte ``offset``."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read(max_bytes)
        except FileNotFoundError:
            return b""

    def terminate(self, grace_seconds: float) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace_seconds`` (at once if 0)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.stopped, self.grace = True, grace_seconds
        pgid = self.proc.pid
        if grace_seconds <= 0:
            _signal_group(pgid, signal.SIGKILL)
            return
        _signal_group(pgid, signal.SIGTERM)
        timer = threading.Timer(grace_seconds, _signal_group, (pgid, signal.SIGKILL))
        timer.daemon = True
        timer.start()
