"""Training overhead: the same DDP script launched by ``torchrun`` and as a cnai TrainJob.

The workload is ``examples/digits/train.py`` (a small CNN on scikit-learn's digits,
DistributedDataParallel over gloo, 2 workers of one process each, ``--epochs E``),
launched two ways, alternating, ``--runs`` times each after one discarded warm-up pair:

- ``torchrun``: ``python -m torch.distributed.run --nproc-per-node 2 --master-addr
  127.0.0.1 --master-port P examples/digits/train.py --epochs E`` as a subprocess of this
  process, from the repository root, with this environment less cnai's and a launcher's
  variables, plus ``PYTHONUNBUFFERED=1`` and ``CNAI_CHECKPOINT_DIR`` set to a fresh
  temporary directory (the script resumes from a non-empty one). Its stdout and stderr
  are read line by line as they arrive.
  torchrun's agent imports torch before it starts the 2 workers.
- ``cnai``: one ``cnai up`` for the whole benchmark (its own ``CNAI_HOME``, started once,
  stopped at the end), and per run a TrainJob with a new name (``numNodes: 2``, command
  ``python examples/digits/train.py --epochs E``, ``workingDir`` the repository root,
  1 CPU requested per node). Each node's pod runs the script itself with torchrun's
  environment (one process per node, so no torchrun agent in the pods). The platform
  gives every job a checkpoint directory of its own (by uid), so each run starts empty;
  it also gives the job a tracking run, so the script logs its parameters, one metric
  point per epoch and the exported model there (torchrun's runs have no server to log
  to). Rank 0's pod log is followed (``Client.logs(follow=True)``, reopened every 20 ms
  until the pod has output) and the job is read every 20 ms until its phase is
  terminal. After each run the TrainJob is deleted and its pods are waited for, so
  nothing of it runs during the next run.

Per run it measures, from just before ``Popen`` or ``Client.create``:

- **submit to first epoch**: when rank 0's ``epoch 1 ...`` line reached this process.
  The script prints nothing per step, so the first training step cannot be seen from
  outside; the first epoch line comes one epoch (the same work in both) after it. So
  the difference of the two medians is cnai's overhead before training starts, and
  the absolute figures are one epoch above "submit to first step".
- **total wall time**: to the launcher's exit (``torchrun``), or to the first read of the
  TrainJob that shows phase Succeeded (``cnai``; reads every 20 ms, so up to 20 ms
  late).

It also records, to say where cnai's time goes: per pod, when the runtime wrote its
launch spec, when the process started and when it ended (from the local runtime's
files under ``$CNAI_HOME/pods/<uid>/``, which have microseconds; the API's timestamps
have whole seconds); the arrival of every output line (for the time per epoch and the
tail after the last epoch); the machine's busy CPU seconds (``/proc/stat``) and the
platform server's CPU seconds over each run.

Before the runs it measures the platform server's CPU share idle and while this process
reads a TrainJob every 20 ms (the price of measuring, paid on the CPUs the pods use).

The default ``--epochs 3``: the issue quotes 5.9 s per run (3.6 s to the first step);
on this 2-core machine the script alone needs about 6 s before its first epoch line, so
no run is that short here (1 epoch: about 8.5 s). 3 epochs keep a run at about 9-10 s,
where fixed costs, which are what cnai adds, weigh most.

It prints the median and range (min-max) of each figure per launcher, cnai's overhead
before the first epoch (difference of medians) and the ratio of median wall times, with
the aims (under 1 s, under 5%), and writes every number to
benchmarks/results/training_overhead.json. Results: docs/benchmarks.md.

Run: ``.venv/bin/python benchmarks/training_overhead.py`` (``--runs N``, ``--epochs E``,
``--quick`` for 2 runs each and no warm-up, ``--trainer-env NAME=VALUE`` to add to
the TrainJob's environment for diagnosis, e.g. ``CNAI_RUN_ID=`` to turn tracking off).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cnai import Client
from cnai.core.errors import ApiError, NotFound
from common.cpu import cpu_busy_s, process_cpu_s
from common.servers import Server, free_port, start_cnai, stop

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "training_overhead.json"
SCRIPT = "examples/digits/train.py"
NAMESPACE = "default"
POLL_S = 0.02  # how often the TrainJob is read and a pod log without output reopened
RUN_TIMEOUT_S = 300.0
CLEANUP_TIMEOUT_S = 60.0
AIM_FIRST_EPOCH_S = 1.0  # cnai adds under 1 s before the first step
AIM_WALL_RATIO = 1.05  # and under 5% to the median wall time
EPOCH_LINE = re.compile(r"^epoch (\d+) loss \S+ accuracy \S+ world 2 restart 0$")
LAUNCHER_VARS = frozenset(
    {
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "LOCAL_WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "GROUP_RANK",
        "NODE_RANK",
        "TORCHELASTIC_RESTART_COUNT",
    }
)


# ------------------------------------------------------------------------------- a run


@dataclass
class Run:
    """One launch: every output line with its arrival time (seconds since submit)."""

    runner: str
    name: str
    wall_s: float = 0.0
    lines: list[tuple[float, str]] = field(default_factory=list)
    busy_cpu_s: float = 0.0  # the whole machine's, over the run
    extra: dict[str, Any] = field(default_factory=dict)

    def epoch_times(self) -> list[float]:
        return [t for t, line in self.lines if EPOCH_LINE.match(line)]

    def first_epoch_s(self) -> float:
        times = self.epoch_times()
        if not times:
            raise RuntimeError(f"{self.runner} {self.name}: no epoch line:\n{self.output()}")
        return times[0]

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def check(self, epochs: int) -> None:
        """Every epoch once from 1 (so it did not resume), and the model exported."""
        seen = [int(m.group(1)) for _, ln in self.lines if (m := EPOCH_LINE.match(ln))]
        exported = any(line.startswith("exported ") for _, line in self.lines)
        if seen != list(range(1, epochs + 1)) or not exported:
            raise RuntimeError(f"{self.runner} {self.name}: unexpected output:\n{self.output()}")

    def to_dict(self) -> dict[str, Any]:
        epochs = self.epoch_times()
        exported = [t for t, line in self.lines if line.startswith("exported ")]
        return {
            "name": self.name,
            "first_epoch_s": round(self.first_epoch_s(), 4),
            "wall_s": round(self.wall_s, 4),
            "epoch_s": round((epochs[-1] - epochs[0]) / (len(epochs) - 1), 4)
            if len(epochs) > 1
            else None,
            "last_epoch_s": round(epochs[-1], 4),
            "exported_s": round(exported[0], 4) if exported else None,
            "busy_cpu_s": round(self.busy_cpu_s, 2),
            **self.extra,
            "lines": [[round(t, 4), line] for t, line in self.lines],
        }


def _split(buffer: bytes, chunk: bytes, at: float, into: list[tuple[float, str]]) -> bytes:
    """Append the complete lines of ``buffer + chunk`` to ``into``; return the rest."""
    *complete, rest = (buffer + chunk).split(b"\n")
    into.extend((at, line.decode(errors="replace").rstrip("\r")) for line in complete)
    return rest


# ---------------------------------------------------------------------------- torchrun


def torchrun_env(checkpoints: Path) -> dict[str, str]:
    """This environment without cnai's or a launcher's variables, plus the checkpoint dir."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CNAI_") and k not in LAUNCHER_VARS
    }
    return env | {"PYTHONUNBUFFERED": "1", "CNAI_CHECKPOINT_DIR": str(checkpoints)}


def torchrun_command(epochs: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        SCRIPT,
        "--epochs",
        str(epochs),
    ]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _start_ticks(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (/proc/PID/stat field 22)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def workers_started_s(launcher: int) -> float | None:
    """Seconds from the launcher's start to its last worker's (10 ms ticks), while the
    workers run: how long torchrun itself takes before the script starts."""
    try:
        children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
        ticks = max(_start_ticks(int(c)) for c in children) - _start_ticks(launcher)
    except (OSError, ValueError):  # ValueError: no children
        return None
    return round(ticks / os.sysconf("SC_CLK_TCK"), 3)


def run_torchrun(name: str, epochs: int) -> Run:
    """One launch by torchrun: Popen to exit, reading its output as it comes."""
    run = Run("torchrun", name)
    checkpoints = Path(tempfile.mkdtemp(prefix="cnai-bench-ckpt-"))
    cmd, env = torchrun_command(epochs), torchrun_env(checkpoints)
    busy0 = cpu_busy_s(None)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group, so a timeout kills the workers too
    )
    watchdog = threading.Timer(RUN_TIMEOUT_S, _kill_group, (proc,))
    watchdog.start()
    try:
        assert proc.stdout is not None
        buffer = b""
        while chunk := os.read(proc.stdout.fileno(), 65536):  # what has come, unbuffered
            buffer = _split(buffer, chunk, time.perf_counter() - t0, run.lines)
            if "workers_started_s" not in run.extra and run.epoch_times():
                run.extra["workers_started_s"] = workers_started_s(proc.pid)
        code = proc.wait()
        run.wall_s = time.perf_counter() - t0
        run.busy_cpu_s = cpu_busy_s(None) - busy0
        if buffer:
            run.lines.append((run.wall_s, buffer.decode(errors="replace")))
    finally:
        watchdog.cancel()
        _kill_group(proc)
        proc.wait()
        shutil.rmtree(checkpoints, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"torchrun exited {code}:\n{run.output()}")
    run.check(epochs)
    return run


# -------------------------------------------------------------------------------- cnai


def trainjob(name: str, epochs: int, env: dict[str, str]) -> dict[str, Any]:
    """The TrainJob of one run; ``env`` overrides the platform's variables of the same
    name (``CNAI_RUN_ID=`` turns the script's tracking off), for diagnosis."""
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "trainer": {
                "numNodes": 2,
                "command": ["python", SCRIPT, "--epochs", str(epochs)],
                "workingDir": str(ROOT),
                "resourcesPerNode": {"requests": {"cpu": "1"}},
                "env": [{"name": k, "value": v} for k, v in env.items()],
            }
        },
    }


class LogFollower(threading.Thread):
    """Follows one pod's log from before the pod exists until :meth:`finish` is called
    and the stream has been read to its end once more."""

    def __init__(self, config: Path, pod: str, t0: float) -> None:
        super().__init__(daemon=True, name=f"follow-{pod}")
        self.config, self.pod, self.t0 = config, pod, t0
        self.lines: list[tuple[float, str]] = []
        self.error: BaseException | None = None
        self._done = threading.Event()

    def finish(self, timeout: float = CLEANUP_TIMEOUT_S) -> list[tuple[float, str]]:
        self._done.set()
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.lines

    def run(self) -> None:
        try:
            with Client(config_path=self.config) as client:
                self._follow(client)
        except BaseException as exc:
            self.error = exc

    def _follow(self, client: Client) -> None:
        offset, buffer = 0, b""
        while True:
            last = self._done.is_set()  # decided before reading: the read after sees all
            with contextlib.suppress(NotFound):  # the pod is not created yet
                for chunk in client.logs(self.pod, NAMESPACE, follow=True, offset=offset):
                    offset += len(chunk)
                    buffer = _split(buffer, chunk, time.perf_counter() - self.t0, self.lines)
            if last:
                break
            time.sleep(POLL_S)
        if buffer:
            self.lines.append((time.perf_counter() - self.t0, buffer.decode(errors="replace")))


class CnaiRunner:
    """One platform for the whole benchmark; one TrainJob per run."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.server: Server | None = None
        self.client: Client | None = None

    def start(self) -> float:
        """Start the platform; seconds until it answered /readyz."""
        t0 = time.perf_counter()
        self.server = start_cnai(self.home, None)  # not pinned: the pods need both CPUs
        self.client = Client(config_path=self.home / "config.yaml")
        return time.perf_counter() - t0

    def run(self, name: str, epochs: int) -> Run:
        assert self.client is not None
        assert self.server is not None
        run = Run("cnai", name)
        server_cpu0, busy0 = process_cpu_s(self.server.proc.pid), cpu_busy_s(None)
        t0 = time.perf_counter()
        wall0 = time.time()
        follower = LogFollower(self.home / "config.yaml", f"{name}-0-0", t0)
        follower.start()
        try:
            self.client.create(trainjob(name, epochs, self.env))
            job = self._wait_terminal(name, t0)
            run.wall_s = time.perf_counter() - t0
            run.busy_cpu_s = cpu_busy_s(None) - busy0
            run.extra["server_cpu_s"] = round(process_cpu_s(self.server.proc.pid) - server_cpu0, 3)
        finally:
            run.lines = follower.finish()
        status = job.get("status") or {}
        if status.get("phase") != "Succeeded":
            raise RuntimeError(f"TrainJob {name} {status.get('phase')}: {status}\n{run.output()}")
        run.extra["pods"] = self._pod_times(name, wall0)
        run.check(epochs)
        return run

    def server_cpu_shares(self, seconds: float = 3.0) -> dict[str, float]:
        """The platform server's CPU share idle, and while this process reads a TrainJob
        every POLL_S as a run's wait does: what measuring costs, on the same CPUs."""
        assert self.server is not None
        assert self.client is not None
        pid, shares = self.server.proc.pid, {}
        for mode in ("idle", "polled"):
            cpu0, t0 = process_cpu_s(pid), time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                if mode == "polled":
                    with contextlib.suppress(NotFound):
                        self.client.get("TrainJob", "no-such-job", NAMESPACE)
                time.sleep(POLL_S)
            shares[mode] = round((process_cpu_s(pid) - cpu0) / (time.perf_counter() - t0), 3)
        return shares

    def _wait_terminal(self, name: str, t0: float) -> dict[str, Any]:
        assert self.client is not None
        while time.perf_counter() - t0 < RUN_TIMEOUT_S:
            job = self.client.get("TrainJob", name, NAMESPACE).to_dict()
            if (job.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return job
            time.sleep(POLL_S)
        raise TimeoutError(f"TrainJob {name} not finished after {RUN_TIMEOUT_S:.0f} s")

    def _pod_times(self, name: str, wall0: float) -> list[dict[str, Any]]:
        """Per pod, seconds from submit to the runtime's launch, the process's start and
        its end (the runtime's own files: the API's timestamps have whole seconds)."""
        assert self.client is not None
        selector = f"cnai.io/trainjob-name={name}"
        out = []
        for pod in self.client.list("Pod", NAMESPACE, label_selector=selector).items:
            meta = pod.to_dict()["metadata"]
            d = self.home / "pods" / meta["uid"]
            ended = json.loads((d / "status.json").read_text())
            started = datetime.fromisoformat((d / "started").read_text().strip())
            finished = datetime.fromisoformat(ended["finishedAt"])
            out.append(
                {
                    "pod": meta["name"],
                    "launched_s": round((d / "spec.json").stat().st_mtime - wall0, 4),
                    "started_s": round(started.timestamp() - wall0, 4),
                    "finished_s": round(finished.timestamp() - wall0, 4),
                }
            )
        return sorted(out, key=lambda p: p["pod"])

    def delete(self, name: str) -> None:
        """Delete the TrainJob and wait until its pods are gone."""
        assert self.client is not None
        with contextlib.suppress(NotFound):
            self.client.delete("TrainJob", name, NAMESPACE)
        selector = f"cnai.io/trainjob-name={name}"
        deadline = time.monotonic() + CLEANUP_TIMEOUT_S
        while self.client.list("Pod", NAMESPACE, label_selector=selector).items:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pods of TrainJob {name} still there")
            time.sleep(0.1)

    def close(self) -> None:
        """Delete every TrainJob left, stop the platform, then kill any pod process that
        outlived it (pods run under shims that outlive the platform by design)."""
        try:
            if self.client is not None:
                with contextlib.suppress(ApiError):
                    for job in self.client.list("TrainJob", NAMESPACE).items:
                        self.delete(job.to_dict()["metadata"]["name"])
                self.client.close()
        finally:
            if self.server is not None:
                stop(self.server)
            kill_leftover_pods(self.home / "pods")


def kill_leftover_pods(pods: Path) -> None:
    """SIGKILL the process group and the shim of every pod under ``pods`` still running
    (each pid checked against its command line first, so a reused pid is left alone)."""
    for pod in pods.glob("*"):
        for pid_file, mark, kill in (
            ("child.pid", SCRIPT, os.killpg),
            ("shim.pid", str(pod), os.kill),
        ):
            with contextlib.suppress(OSError, ValueError):
                pid = int((pod / pid_file).read_text().strip())
                if mark in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                    kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------------- the benchmark


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def cnai_phases(run: dict[str, Any]) -> dict[str, float]:
    """Where a cnai run's time went, in seconds (see the module docstring)."""
    pods = run["pods"]
    launched = max(p["launched_s"] for p in pods)
    started = max(p["started_s"] for p in pods)
    finished = max(p["finished_s"] for p in pods)
    return {
        "submit_to_last_pod_launched": launched,
        "launched_to_process_started": started - launched,
        "process_started_to_first_epoch_seen": run["first_epoch_s"] - started,
        "last_epoch_seen_to_last_process_end": finished - run["last_epoch_s"],
        "last_process_end_to_succeeded_seen": run["wall_s"] - finished,
    }


def _processes_started_s(run: dict[str, Any]) -> float | None:
    """Seconds from submit until the script's last process started."""
    if "pods" in run:
        return float(max(p["started_s"] for p in run["pods"]))
    started = run.get("workers_started_s")
    return None if started is None else float(started)


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for runner, rs in runs.items():
        out[runner] = {
            key: spread([r[key] for r in rs])
            for key in ("first_epoch_s", "wall_s", "epoch_s", "last_epoch_s", "busy_cpu_s")
        }
        out[runner]["tail_s"] = spread([r["wall_s"] - r["last_epoch_s"] for r in rs])
        started = [t for r in rs if (t := _processes_started_s(r)) is not None]
        if len(started) == len(rs):
            out[runner]["processes_started_s"] = spread(started)
            out[runner]["started_to_first_epoch_s"] = spread(
                [r["first_epoch_s"] - t for r, t in zip(rs, started, strict=True)]
            )
    phases = [cnai_phases(r) for r in runs["cnai"]]
    out["cnai"]["phases"] = {k: spread([p[k] for p in phases]) for k in phases[0]}
    out["cnai"]["server_cpu_s"] = spread([r["server_cpu_s"] for r in runs["cnai"]])
    t, c = out["torchrun"], out["cnai"]
    first = c["first_epoch_s"]["median"] - t["first_epoch_s"]["median"]
    ratio = c["wall_s"]["median"] / t["wall_s"]["median"]
    out["overhead"] = {
        "first_epoch_s": round(first, 3),
        "wall_s": round(c["wall_s"]["median"] - t["wall_s"]["median"], 3),
        "wall_ratio": round(ratio, 4),
        "aim_first_epoch_met": first < AIM_FIRST_EPOCH_S,
        "aim_wall_met": ratio < AIM_WALL_RATIO,
    }
    return out


def bench(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="cnai-bench-training-"))
    cnai = CnaiRunner(home, dict(args.trainer_env))
    runs: dict[str, list[dict[str, Any]]] = {"torchrun": [], "cnai": []}
    warmup: dict[str, list[dict[str, Any]]] = {"torchrun": [], "cnai": []}
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    try:
        ready_s = cnai.start()
        print(f"cnai up: ready in {ready_s:.1f} s (CNAI_HOME {home})", flush=True)
        shares = cnai.server_cpu_shares()
        for i in range(args.warmup + args.runs):
            into = warmup if i < args.warmup else runs
            label = "warm-up" if i < args.warmup else f"run {i - args.warmup + 1}/{args.runs}"
            peer = run_torchrun(f"torchrun-{i}", args.epochs).to_dict()
            into["torchrun"].append(peer)
            name = f"digits-{i}-{uuid.uuid4().hex[:6]}"
            try:
                ours = cnai.run(name, args.epochs).to_dict()
            finally:
                cnai.delete(name)
            into["cnai"].append(ours)
            print(
                f"{label}: torchrun first epoch {peer['first_epoch_s']:.2f} s, wall "
                f"{peer['wall_s']:.2f} s | cnai first epoch {ours['first_epoch_s']:.2f} s, "
                f"wall {ours['wall_s']:.2f} s",
                flush=True,
            )
    finally:
        cnai.close()
        shutil.rmtree(home, ignore_errors=True)
    return {
        "benchmark": "training_overhead",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/training_overhead.py", *sys.argv[1:]]),
        "settings": {
            "runs": args.runs,
            "warmup": args.warmup,
            "epochs": args.epochs,
            "workers": 2,
            "poll_s": POLL_S,
            "trainer_env": dict(args.trainer_env),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": importlib.metadata.version("torch"),
            "platform": platform.platform(),
            "loadavg_start": loadavg_start,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "cnai_ready_s": round(ready_s, 2),
        "cnai_server_cpu_share": shares,
        "summary": summarize(runs),
        "runs": runs,
        "warmup_runs": warmup,
    }


# ----------------------------------------------------------------------------- report


def _fmt(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _optional_rows(row: str, t: dict[str, Any], c: dict[str, Any]) -> list[str]:
    """The split of the time to the first epoch, where both launchers have it."""
    rows = []
    for key, label in (
        ("processes_started_s", "  submit to script processes started"),
        ("started_to_first_epoch_s", "  script start to first epoch line"),
    ):
        if key in t and key in c:
            rows.append(row.format(label, _fmt(t[key]), _fmt(c[key]), ""))
    return rows


def report(r: dict[str, Any]) -> str:
    s, o = r["settings"], r["summary"]["overhead"]
    t, c = r["summary"]["torchrun"], r["summary"]["cnai"]
    row = "  {:<34}{:>22}{:>22}{:>18}"
    lines = [
        f"Training overhead ({r['date']}; {r['machine']['cpus']} CPUs; load average "
        f"{r['machine']['loadavg_start']} -> {r['machine']['loadavg_end']})",
        f"{SCRIPT} --epochs {s['epochs']} on 2 workers, {s['runs']} runs per launcher, "
        f"alternating, after {s['warmup']} warm-up pair(s); seconds, median [min-max]"
        + (f"; TrainJob env {s['trainer_env']}" if s["trainer_env"] else ""),
        "",
        row.format("", "torchrun", "cnai TrainJob", "cnai - torchrun"),
        row.format(
            "submit to first epoch line",
            _fmt(t["first_epoch_s"]),
            _fmt(c["first_epoch_s"]),
            f"{o['first_epoch_s']:+.2f}",
        ),
        row.format("total wall", _fmt(t["wall_s"]), _fmt(c["wall_s"]), f"{o['wall_s']:+.2f}"),
        *_optional_rows(row, t, c),
        row.format("time per epoch", _fmt(t["epoch_s"]), _fmt(c["epoch_s"]), ""),
        row.format("last epoch line to the end", _fmt(t["tail_s"]), _fmt(c["tail_s"]), ""),
        row.format("machine busy CPU-s per run", _fmt(t["busy_cpu_s"]), _fmt(c["busy_cpu_s"]), ""),
        "",
        f"  wall ratio cnai / torchrun (medians): {o['wall_ratio']:.3f}",
        f"  aim: cnai adds under {AIM_FIRST_EPOCH_S:g} s before the first epoch: "
        f"{_met(o['aim_first_epoch_met'])} ({o['first_epoch_s']:+.2f} s)",
        f"  aim: cnai adds under {AIM_WALL_RATIO - 1:.0%} to the median wall time: "
        f"{_met(o['aim_wall_met'])} ({o['wall_ratio'] - 1:+.1%})",
        "",
        f"  cnai, where the time goes (from the runtime's files; server CPU "
        f"{_fmt(c['server_cpu_s'])} s per run):",
    ]
    lines += [f"    {k.replace('_', ' '):<40}{_fmt(v):>22}" for k, v in c["phases"].items()]
    share = r["cnai_server_cpu_share"]
    lines.append(
        f"  cnai's first epoch and wall are read every {s['poll_s'] * 1000:.0f} ms; the server "
        f"uses {share['idle']:.1%} of a CPU idle, {share['polled']:.1%} polled so"
    )
    return "\n".join(lines)


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, value


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10, help="runs per launcher (default 10)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run, 2 or more (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="discarded pairs first (default 1)")
    p.add_argument("--quick", action="store_true", help="2 runs each, no warm-up")
    p.add_argument(
        "--trainer-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add to the TrainJob's env, for diagnosis (CNAI_RUN_ID= turns tracking off)",
    )
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args()
    if args.epochs < 2:
        p.error("--epochs must be 2 or more (the time per epoch is measured between epochs)")
    if args.quick:
        args.runs, args.warmup = 2, 0
    return args


def main() -> int:
    args = parse_args()
    result = bench(args)
    print()
    print(report(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
