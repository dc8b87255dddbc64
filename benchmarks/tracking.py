"""Experiment tracking: ingest rate, read time and memory of MLflow-compatible servers.

Each server is started on 127.0.0.1 in a temporary directory, one after the other, and
driven by the real MLflow client (``mlflow.MlflowClient``) from this process; client and
server share this machine. The workload (:func:`mlflow_client_workload`) is:

1. Log ``--runs`` x ``--metrics`` x ``--steps`` points (default 100 x 10 x 1,000 =
   1,000,000) into fresh runs of a fresh experiment, one run after the other, with
   ``MlflowClient().log_batch(run_id, metrics=[...])``. Points are batched as MLflow's own
   client batches a training loop's ``mlflow.log_metrics({...}, step=step)`` calls when
   asynchronous logging is on: the queued steps go out together, up to the server's limit
   of 1,000 metrics per batch, so by default one ``log_batch`` carries 100 steps x 10
   metrics (``--steps-per-batch``; 1 sends one request per step, which on this machine
   is about 35x slower for MLflow's server and 14x for FastTrackML).
2. Read every history back with ``MlflowClient().get_metric_history(run_id, key)`` for all
   runs x metrics (run, key) pairs, and verify every point: exactly ``--steps`` points per
   history, one per step, with the value and the timestamp (milliseconds) that were sent.
   Any mismatch stops the benchmark with the run, key and step that differ.

It measures per server: ingest points/s (wall time of the logging phase), read seconds
(wall time of the ``get_metric_history`` calls, verification excluded and reported
apart), the server's resident memory (RSS summed over its whole process tree: MLflow's
CLI, uvicorn and its 4 workers, and its job runner with 7 huey consumers, which are also
reported apart; sampled every 0.25 s, peak per phase and at the end, plus PSS and USS at
the end), the server's CPU seconds per phase and the client's own CPU seconds.

Peers (``--only`` picks some; the default is all):

- ``mlflow``: ``mlflow server --backend-store-uri sqlite:///DIR/mlflow.db
  --default-artifact-root DIR/artifacts --host 127.0.0.1 --port P`` (its defaults
  otherwise: uvicorn with 4 workers), ready when ``GET /health`` answers 200.
- ``fasttrackml``: FastTrackML's Go server, ``fml server --listen-address 127.0.0.1:P
  --database-uri sqlite://DIR/fasttrackml.db --default-artifact-root DIR/artifacts``,
  ready when ``GET /health`` answers 200.

- ``cnai-mlflow``: ``cnai up`` (its own CNAI_HOME), driven by the same MLflow client
  workload through cnai's MLflow-compatible API, with ``MLFLOW_TRACKING_TOKEN`` set to
  the platform's admin token.
- ``cnai-sdk``: another ``cnai up``, driven by cnai's own SDK
  (:func:`cnai_sdk_workload`): one ``run.log_metrics({...}, step=s)`` call per step, as a
  training loop makes them, batched by the SDK in the background; histories read with one
  request per metric for all runs, and verified the same way.

It prints one table (ingest points/s, read s, server peak RSS, and each figure as a
ratio to MLflow's) and writes benchmarks/results/tracking.json.

Needs ``pip install mlflow==3.17.2 psutil`` and ``pip install --no-deps
fasttrackml==0.6.0`` in the venv (fasttrackml pins mlflow<3, but only its ``fml`` binary
is used; psutil is optional, /proc is read without it). Results: docs/benchmarks.md.

Run: ``cd benchmarks && ../.venv/bin/python tracking.py`` (``--runs 20`` for a shorter
run, ``--only NAME`` for some servers).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mlflow import MlflowClient
from mlflow import __version__ as mlflow_version
from mlflow.entities import Metric

from common.servers import Server, free_port, spawn, start_cnai, stop, wait_ready

try:
    import psutil  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - /proc is read instead
    psutil = None

RESULTS = Path(__file__).resolve().parent / "results" / "tracking.json"
MAX_METRICS_PER_BATCH = 1000  # MLflow's server refuses larger log_batch requests
READY_TIMEOUT_S = 180.0  # MLflow's server needs ~25 s to start here (4 workers, job runner)
SAMPLE_INTERVAL_S = 0.25
BASE_TIMESTAMP_MS = 1_700_000_000_000
MB = 1024 * 1024


# --------------------------------------------------------------------------- workload


class VerificationError(AssertionError):
    """A metric history read back differs from what was logged."""


class PhaseHook(Protocol):
    def __call__(self, phase: str) -> None: ...


def expected_value(run: int, key: int, step: int) -> float:
    """A value unique to (run, key, step) and exact in binary floating point."""
    return run * 1000.0 + key + step / 1024.0


def expected_timestamp(step: int) -> int:
    return BASE_TIMESTAMP_MS + step


def mlflow_client_workload(
    tracking_uri: str,
    runs: int,
    metrics: int,
    steps: int,
    steps_per_batch: int = 100,
    on_phase: PhaseHook | None = None,
) -> dict[str, Any]:
    """Log runs x metrics x steps points through the MLflow client, read them all back, verify.

    ``tracking_uri`` is any MLflow-compatible server (``http://127.0.0.1:P`` or one with a
    path prefix). ``on_phase`` is told ``"setup"``, ``"ingest"``, ``"read"`` and ``"done"``
    as the phases begin, so a caller can attribute server memory and CPU to them. Raises
    :class:`VerificationError` on the first point that differs.
    """
    if steps_per_batch < 1 or steps_per_batch * metrics > MAX_METRICS_PER_BATCH:
        raise ValueError(
            f"{steps_per_batch} steps x {metrics} metrics per batch is outside "
            f"1..{MAX_METRICS_PER_BATCH} metrics, MLflow's limit for one log_batch"
        )
    phase = on_phase or (lambda _phase: None)
    client = MlflowClient(tracking_uri=tracking_uri)
    keys = [f"metric_{k}" for k in range(metrics)]

    phase("setup")
    start = time.perf_counter()
    experiment_id = client.create_experiment(f"tracking-bench-{uuid.uuid4().hex[:8]}")
    run_ids = [
        client.create_run(experiment_id, run_name=f"run-{r}").info.run_id for r in range(runs)
    ]
    setup_s = time.perf_counter() - start

    phase("ingest")
    batches = 0
    cpu0, start = time.thread_time(), time.perf_counter()
    for r, run_id in enumerate(run_ids):
        for first in range(0, steps, steps_per_batch):
            batch = [
                Metric(key, expected_value(r, k, s), expected_timestamp(s), s)
                for s in range(first, min(first + steps_per_batch, steps))
                for k, key in enumerate(keys)
            ]
            client.log_batch(run_id, metrics=batch)
            batches += 1
    ingest_s = time.perf_counter() - start
    ingest_cpu_s = time.thread_time() - cpu0

    phase("read")
    read_s = verify_s = 0.0
    cpu0 = time.thread_time()
    for r, run_id in enumerate(run_ids):
        for k, key in enumerate(keys):
            start = time.perf_counter()
            history = client.get_metric_history(run_id, key)
            mid = time.perf_counter()
            _verify_history(history, r, run_id, k, key, steps)
            verify_s += time.perf_counter() - mid
            read_s += mid - start
    read_cpu_s = time.thread_time() - cpu0 - verify_s
    phase("done")

    for run_id in run_ids:
        client.set_terminated(run_id)
    points = runs * metrics * steps
    return {
        "tracking_uri": tracking_uri,
        "experiment_id": experiment_id,
        "runs": runs,
        "metrics": metrics,
        "steps": steps,
        "points": points,
        "steps_per_batch": steps_per_batch,
        "log_batch_requests": batches,
        "setup_s": round(setup_s, 3),
        "ingest_s": round(ingest_s, 3),
        "points_per_s": round(points / ingest_s, 1),
        "client_cpu_ingest_s": round(ingest_cpu_s, 3),
        "client_cpu_s_per_million_points": round(ingest_cpu_s / points * 1e6, 2),
        "histories_read": runs * metrics,
        "read_s": round(read_s, 3),
        "client_cpu_read_s": round(read_cpu_s, 3),
        "verify_s": round(verify_s, 3),
        "points_verified": points,
        "verified": True,
    }


def cnai_sdk_workload(
    tracking_uri: str,
    runs: int,
    metrics: int,
    steps: int,
    steps_per_batch: int = 100,
    on_phase: PhaseHook | None = None,
) -> dict[str, Any]:
    """The same points through cnai's own SDK, as a training loop would log them: one
    ``run.log_metrics({10 metrics}, step=s)`` call per step (the SDK batches in the
    background; ``steps_per_batch`` does not apply), each run flushed at its end. Then
    every history read back with ``TrackingClient.histories`` (one request per metric
    for all runs) and verified point by point. The token is ``$CNAI_TOKEN``."""
    from cnai.tracking.sdk import Run, TrackingClient

    phase = on_phase or (lambda _phase: None)
    client = TrackingClient(tracking_uri, os.environ["CNAI_TOKEN"], "default")
    keys = [f"metric_{k}" for k in range(metrics)]
    spool = Path(tempfile.mkdtemp(prefix="cnai-bench-spool-"))

    phase("setup")
    start = time.perf_counter()
    group = f"tracking-bench-{uuid.uuid4().hex[:8]}"
    run_ids = [str(client.create_run(name=f"run-{r}", group=group)["id"]) for r in range(runs)]
    setup_s = time.perf_counter() - start

    phase("ingest")
    cpu0, start = time.process_time(), time.perf_counter()
    for r, run_id in enumerate(run_ids):
        run = Run(client, run_id, spool_dir=spool)
        for s in range(steps):
            run.log_metrics(
                {key: expected_value(r, k, s) for k, key in enumerate(keys)},
                step=s,
                timestamp=expected_timestamp(s),
            )
        run.end()
        if run.errors:
            raise VerificationError(f"run {r}: the server refused batches: {run.errors[:3]}")
    ingest_s = time.perf_counter() - start
    ingest_cpu_s = time.process_time() - cpu0

    phase("read")
    read_s = verify_s = 0.0
    cpu0 = time.process_time()
    for k, key in enumerate(keys):
        start = time.perf_counter()
        found = client.histories(run_ids, key)
        mid = time.perf_counter()
        for r, run_id in enumerate(run_ids):
            cols = found[run_id]
            history = [
                Metric(key, v, t, st)
                for st, v, t in zip(cols["steps"], cols["values"], cols["timestamps"], strict=True)
            ]
            _verify_history(history, r, run_id, k, key, steps)
        verify_s += time.perf_counter() - mid
        read_s += mid - start
    read_cpu_s = time.process_time() - cpu0 - verify_s
    phase("done")
    client.close()
    shutil.rmtree(spool, ignore_errors=True)
    points = runs * metrics * steps
    return {
        "tracking_uri": tracking_uri,
        "run_group": group,
        "runs": runs,
        "metrics": metrics,
        "steps": steps,
        "points": points,
        "log_calls": runs * steps,
        "setup_s": round(setup_s, 3),
        "ingest_s": round(ingest_s, 3),
        "points_per_s": round(points / ingest_s, 1),
        "client_cpu_ingest_s": round(ingest_cpu_s, 3),
        "client_cpu_s_per_million_points": round(ingest_cpu_s / points * 1e6, 2),
        "histories_read": runs * metrics,
        "history_requests": metrics,
        "read_s": round(read_s, 3),
        "client_cpu_read_s": round(read_cpu_s, 3),
        "verify_s": round(verify_s, 3),
        "points_verified": points,
        "verified": True,
    }


def _verify_history(
    history: list[Metric], run: int, run_id: str, k: int, key: str, steps: int
) -> None:
    where = f"run {run} ({run_id}), key {key!r}"
    if len(history) != steps:
        raise VerificationError(f"{where}: {len(history)} points read back, {steps} logged")
    for s, m in enumerate(sorted(history, key=lambda m: m.step)):
        if m.step != s:
            raise VerificationError(f"{where}: step {m.step} where step {s} was expected")
        if m.key != key:
            raise VerificationError(f"{where}, step {s}: key {m.key!r}")
        want = expected_value(run, k, s)
        if m.value != want:
            raise VerificationError(f"{where}, step {s}: value {m.value!r}, logged {want!r}")
        if m.timestamp is None or m.timestamp != expected_timestamp(s):
            raise VerificationError(
                f"{where}, step {s}: timestamp {m.timestamp!r}, logged {expected_timestamp(s)}"
            )


# --------------------------------------------------------------------- process memory


def _tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants alive now."""
    if psutil is not None:
        try:
            proc = psutil.Process(root)
            return [root, *(int(c.pid) for c in proc.children(recursive=True))]
        except psutil.Error:
            return []
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def _rss_and_cpu(pid: int) -> tuple[int, float, str]:
    """Resident bytes, CPU seconds (user + system) and a short command line of ``pid``."""
    if psutil is not None:
        proc = psutil.Process(pid)
        with proc.oneshot():
            times = proc.cpu_times()
            cmd = " ".join(proc.cmdline())
            return int(proc.memory_info().rss), float(times.user + times.system), cmd
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    rss = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return rss, (int(stat[11]) + int(stat[12])) / tick, cmd


@dataclass
class TreeSample:
    rss_bytes: int
    cpu_s: float
    processes: list[dict[str, Any]]
    background_rss_bytes: int = 0  # of processes whose command line names a background marker


def sample_tree(root: int, background: tuple[str, ...] = ()) -> TreeSample:
    rss, cpu, procs, bg = 0, 0.0, [], 0
    for pid in _tree_pids(root):
        try:
            p_rss, p_cpu, cmd = _rss_and_cpu(pid)
        except (OSError, ValueError, IndexError):
            continue
        except Exception as e:  # psutil.NoSuchProcess and friends: the process has gone
            if psutil is not None and isinstance(e, psutil.Error):
                continue
            raise
        rss += p_rss
        cpu += p_cpu
        if any(marker in cmd for marker in background):
            bg += p_rss
        procs.append({"pid": pid, "rss_mb": round(p_rss / MB, 1), "cmd": cmd[:120]})
    return TreeSample(rss, cpu, procs, bg)


def proportional_memory(root: int) -> dict[str, float]:
    """PSS and USS (MB) summed over the tree now: RSS counts shared pages once per process."""
    if psutil is None:
        return {}
    pss = uss = 0
    for pid in _tree_pids(root):
        try:
            full = psutil.Process(pid).memory_full_info()
        except psutil.Error:
            continue
        pss += int(full.pss)
        uss += int(full.uss)
    return {"end_pss_mb": round(pss / MB, 1), "end_uss_mb": round(uss / MB, 1)}


@dataclass
class MemorySampler:
    """Samples a server's process tree in a thread; peak RSS and CPU seconds per phase.

    Processes whose command line contains one of ``background`` (MLflow's job runner and
    its huey consumers) count in the total and are also reported apart.
    """

    root_pid: int
    background: tuple[str, ...] = ()
    interval_s: float = SAMPLE_INTERVAL_S
    phase: str = "idle"
    peak_rss: dict[str, int] = field(default_factory=dict)
    peak_foreground_rss: int = 0
    cpu_at: dict[str, float] = field(default_factory=dict)
    phase_order: list[str] = field(default_factory=list)
    samples: int = 0
    last: TreeSample | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def _record(self) -> TreeSample:
        s = sample_tree(self.root_pid, self.background)
        with self._lock:
            self.samples += 1
            self.last = s
            fg = s.rss_bytes - s.background_rss_bytes
            self.peak_foreground_rss = max(self.peak_foreground_rss, fg)
            self.peak_rss[self.phase] = max(self.peak_rss.get(self.phase, 0), s.rss_bytes)
        return s

    def set_phase(self, phase: str) -> None:
        """Close the current phase with a sample and start ``phase``."""
        s = self._record()
        with self._lock:
            self.phase = phase
            self.phase_order.append(phase)
            self.cpu_at[phase] = s.cpu_s
            self.peak_rss[phase] = s.rss_bytes

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._record()

    def start(self) -> None:
        self.set_phase("idle")
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self.set_phase("end")
        proportional = proportional_memory(self.root_pid)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        phases = self.phase_order
        cpu = {a: round(self.cpu_at[b] - self.cpu_at[a], 2) for a, b in itertools.pairwise(phases)}
        last = self.last or TreeSample(0, 0.0, [])
        return {
            "peak_rss_mb": round(max(self.peak_rss.values()) / MB, 1),
            "peak_rss_mb_by_phase": {p: round(self.peak_rss[p] / MB, 1) for p in phases[:-1]},
            "end_rss_mb": round(last.rss_bytes / MB, 1),
            **proportional,
            "background_markers": list(self.background),
            "peak_rss_mb_without_background": round(self.peak_foreground_rss / MB, 1),
            "end_rss_mb_background": round(last.background_rss_bytes / MB, 1),
            "server_cpu_s_by_phase": cpu,
            "processes_at_end": len(last.processes),
            "process_tree_at_end": last.processes,
            "samples": self.samples,
            "sample_interval_s": self.interval_s,
            "rss_source": "psutil" if psutil is not None else "/proc",
        }


# --------------------------------------------------------------------------- servers


def _spawn(name: str, cmd: list[str], workdir: Path, url: str) -> Server:
    """Start a peer in ``workdir``, without this process's MLFLOW_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return spawn(name, cmd, workdir / f"{name}.log", env, url, cwd=workdir)


def _started(server: Server, health: str) -> Server:
    try:
        wait_ready(server, health, READY_TIMEOUT_S)
    except BaseException:
        stop_tree(server)
        raise
    return server


def start_mlflow(workdir: Path) -> Server:
    """``mlflow server`` on SQLite with its default workers; ready on ``GET /health``."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--default-artifact-root",
        str(workdir / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return _started(_spawn("mlflow", cmd, workdir, f"http://127.0.0.1:{port}"), "/health")


def fml_binary() -> str:
    """FastTrackML's ``fml``, next to this Python first (the venv's bin), then on PATH."""
    here = Path(sys.executable).parent / "fml"
    if here.exists():
        return str(here)
    found = shutil.which("fml")
    if found is None:
        raise RuntimeError("FastTrackML's fml is missing: pip install --no-deps fasttrackml")
    return found


def start_fasttrackml(workdir: Path) -> Server:
    """``fml server`` (FastTrackML) on SQLite; ready on ``GET /health``."""
    port = free_port()
    cmd = [
        fml_binary(),
        "server",
        "--listen-address",
        f"127.0.0.1:{port}",
        "--database-uri",
        f"sqlite://{workdir / 'fasttrackml.db'}",
        "--default-artifact-root",
        str(workdir / "artifacts"),
    ]
    return _started(_spawn("fasttrackml", cmd, workdir, f"http://127.0.0.1:{port}"), "/health")


def stop_tree(server: Server) -> None:
    """Stop the server's process group, then SIGKILL any descendant that left the group."""
    pids = _tree_pids(server.proc.pid) if server.proc.poll() is None else []
    stop(server)
    for pid in pids[1:]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except OSError as e:
        return f"unknown ({e})"
    return (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr) else ""


class Workload(Protocol):
    def __call__(
        self,
        tracking_uri: str,
        runs: int,
        metrics: int,
        steps: int,
        steps_per_batch: int = ...,
        on_phase: PhaseHook | None = ...,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Peer:
    """A tracking server under test: how to start it, where its API is, what drives it."""

    label: str
    start: Callable[[Path], Server]
    version: Callable[[], str]
    command: str
    tracking_uri: Callable[[Server], str] = lambda server: server.url
    background_processes: tuple[str, ...] = ()  # command-line markers of non-serving helpers
    workload: Workload = mlflow_client_workload
    # Environment the client needs (cnai's token, for the MLflow client or cnai's SDK).
    client_env: Callable[[Server], dict[str, str]] = lambda server: {}


def start_cnai_server(workdir: Path) -> Server:
    """``python -m cnai up`` with CNAI_HOME in ``workdir``; ready on ``GET /readyz``."""
    return start_cnai(workdir / "cnai-home", None)


def _cnai_version() -> str:
    from cnai.version import __version__

    return f"cnai {__version__}"


PEERS: dict[str, Peer] = {
    "mlflow": Peer(
        label="MLflow (SQLite)",
        start=start_mlflow,
        version=lambda: f"mlflow {mlflow_version}",
        command="mlflow server --backend-store-uri sqlite:///DIR/mlflow.db "
        "--default-artifact-root DIR/artifacts --host 127.0.0.1 --port P",
        background_processes=("mlflow.server.jobs",),  # job runner + huey consumers
    ),
    "fasttrackml": Peer(
        label="FastTrackML (SQLite)",
        start=start_fasttrackml,
        version=lambda: _version([fml_binary(), "--version"]),
        command="fml server --listen-address 127.0.0.1:P "
        "--database-uri sqlite://DIR/fasttrackml.db --default-artifact-root DIR/artifacts",
    ),
    # cnai, one platform per entry: the MLflow client against its MLflow-compatible
    # API, and its own SDK.
    "cnai-mlflow": Peer(
        label="cnai, MLflow client",
        start=start_cnai_server,
        version=_cnai_version,
        command="cnai up --port P (CNAI_HOME=DIR); MLFLOW_TRACKING_TOKEN=<admin token>",
        client_env=lambda server: {"MLFLOW_TRACKING_TOKEN": server.token or ""},
    ),
    "cnai-sdk": Peer(
        label="cnai, cnai SDK",
        start=start_cnai_server,
        version=_cnai_version,
        command="cnai up --port P (CNAI_HOME=DIR); cnai.tracking.sdk.Run / TrackingClient",
        workload=cnai_sdk_workload,
        client_env=lambda server: {"CNAI_TOKEN": server.token or ""},
    ),
}


# ------------------------------------------------------------------------------ runner


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100, help="Runs logged per server.")
    p.add_argument("--metrics", type=int, default=10, help="Metric keys per run.")
    p.add_argument("--steps", type=int, default=1000, help="Steps per metric.")
    p.add_argument(
        "--steps-per-batch",
        type=int,
        default=100,
        help="Steps per log_batch request (x --metrics must stay <= 1000).",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(PEERS),
        metavar="PEER",
        help=f"Run only this server (repeatable): {', '.join(PEERS)}.",
    )
    p.add_argument("--json", type=Path, default=RESULTS, help="Where the JSON goes.")
    return p.parse_args()


@contextlib.contextmanager
def running(peer: Peer, workdir: Path, result: dict[str, Any]) -> Iterator[Server]:
    """The started server (``result["ready_s"]``: seconds to its first 200), stopped after."""
    start = time.monotonic()
    server = peer.start(workdir)
    result["ready_s"] = round(time.monotonic() - start, 2)
    try:
        yield server
    finally:
        stop_tree(server)


def bench_peer(name: str, peer: Peer, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"label": peer.label, "version": peer.version()}
    result["command"] = peer.command
    with running(peer, workdir, result) as server:
        sampler = MemorySampler(server.proc.pid, peer.background_processes)
        sampler.start()
        saved = {k: os.environ.get(k) for k in peer.client_env(server)}
        os.environ.update(peer.client_env(server))
        try:
            time.sleep(1.0)  # an idle sample or four before the load
            result["workload"] = peer.workload(
                peer.tracking_uri(server),
                args.runs,
                args.metrics,
                args.steps,
                steps_per_batch=args.steps_per_batch,
                on_phase=sampler.set_phase,
            )
        finally:
            result["memory"] = sampler.stop()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    result["disk_mb"] = round(
        sum(f.stat().st_size for f in workdir.rglob("*") if f.is_file() and f.suffix != ".log")
        / MB,
        1,
    )
    return result


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    names = list(dict.fromkeys(args.only or PEERS))
    servers: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"{name}: starting ...", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"cnai-bench-{name}-") as tmp:
            try:
                servers[name] = bench_peer(name, PEERS[name], args, Path(tmp))
            except Exception as e:
                servers[name] = {"label": PEERS[name].label, "error": f"{type(e).__name__}: {e}"}
        print(f"{name}: {_summary(servers[name])}", flush=True)
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "benchmark": "tracking",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/tracking.py", *sys.argv[1:]]),
        "settings": {
            "runs": args.runs,
            "metrics": args.metrics,
            "steps": args.steps,
            "points": args.runs * args.metrics * args.steps,
            "steps_per_batch": args.steps_per_batch,
            "metrics_per_log_batch": args.steps_per_batch * args.metrics,
        },
        "machine": info,
        "servers": servers,
        "ratios_to_mlflow": ratios(servers),
    }


def _summary(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"FAILED: {r['error']}"
    w, m = r["workload"], r["memory"]
    return (
        f"{w['points_per_s']:,.0f} points/s, read {w['read_s']:.1f} s, "
        f"peak RSS {m['peak_rss_mb']:,.0f} MB, {w['points_verified']:,} points verified"
    )


def ratios(servers: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each server's ingest rate, read time and peak RSS divided by MLflow's."""
    base = servers.get("mlflow")
    if base is None or "error" in base:
        return {}
    out = {}
    for name, r in servers.items():
        if "error" in r:
            continue
        out[name] = {
            "points_per_s": round(
                r["workload"]["points_per_s"] / base["workload"]["points_per_s"], 2
            ),
            "read_s": round(r["workload"]["read_s"] / base["workload"]["read_s"], 3),
            "peak_rss_mb": round(r["memory"]["peak_rss_mb"] / base["memory"]["peak_rss_mb"], 3),
        }
    return out


def _row(cells: list[str]) -> str:
    return f"  {cells[0]:<22}" + "".join(f"{c:>16}" for c in cells[1:])


def report(r: dict[str, Any]) -> str:
    s = r["settings"]
    lines = [
        f"Experiment tracking ({r['date']}; {r['machine']['cpus']} CPUs shared by client and "
        f"server; load average {r['machine']['loadavg_start']} -> {r['machine']['loadavg_end']})",
        f"{s['runs']} runs x {s['metrics']} metrics x {s['steps']} steps = {s['points']:,} "
        f"points via MlflowClient.log_batch ({s['metrics_per_log_batch']} metrics a request), "
        f"then all {s['runs'] * s['metrics']} histories read back and verified",
        "",
        _row(["", "ingest points/s", "read s", "peak RSS MB", "x MLflow", "x MLflow", "x MLflow"]),
        _row(["", "", "", "", "(points/s)", "(read s)", "(RSS)"]),
    ]
    rat = r["ratios_to_mlflow"]
    for name, v in r["servers"].items():
        if "error" in v:
            lines.append(_row([name, "FAILED"]))
            continue
        w, m, q = v["workload"], v["memory"], rat.get(name, {})
        lines.append(
            _row(
                [
                    name,
                    f"{w['points_per_s']:,.0f}",
                    f"{w['read_s']:.1f}",
                    f"{m['peak_rss_mb']:,.0f}",
                    f"{q['points_per_s']:.2f}" if q else "-",
                    f"{q['read_s']:.2f}" if q else "-",
                    f"{q['peak_rss_mb']:.2f}" if q else "-",
                ]
            )
        )
    lines.append("")
    for name, v in r["servers"].items():
        if "error" in v:
            lines.append(f"  {name}: {v['error']}")
            continue
        w, m = v["workload"], v["memory"]
        cpu = m["server_cpu_s_by_phase"]
        lines.append(
            f"  {name} ({v['version']}): ready in {v['ready_s']} s; idle RSS "
            f"{m['peak_rss_mb_by_phase'].get('idle', 0):,.0f} MB, end RSS {m['end_rss_mb']:,.0f} "
            f"MB over {m['processes_at_end']} processes (PSS {m.get('end_pss_mb', '?')} MB)"
            f"{_background(m)}; "
            f"server CPU ingest "
            f"{cpu.get('ingest', 0)} s, read {cpu.get('read', 0)} s; client CPU "
            f"{w['client_cpu_s_per_million_points']} s per million points logged, "
            f"{w['client_cpu_read_s']} s reading; data on disk {v['disk_mb']} MB"
        )
    return "\n".join(lines)


def _background(m: dict[str, Any]) -> str:
    if not m["background_markers"]:
        return ""
    return (
        f", of which {m['end_rss_mb_background']:,.0f} MB background jobs (peak without them "
        f"{m['peak_rss_mb_without_background']:,.0f} MB)"
    )


def main() -> int:
    args = parse_args()
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    result = bench(args)
    print()
    print(report(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults written to {args.json}")
    failed = [n for n, v in result["servers"].items() if "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
