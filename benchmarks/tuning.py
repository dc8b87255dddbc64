"""Hyperparameter tuning: how much compute TPE with Hyperband saves, and what a trial costs.

Two parts, each on its own platform (``cnai up`` with a temporary ``CNAI_HOME``, stopped
at the end of the part), in namespace ``default``:

**efficiency** (``--part efficiency``). An Experiment over ``examples/digits/train.py
--epochs 10`` (one node, one process, 1 CPU requested, so two trials run at once on two
cores; ``parallelTrials: 2``, ``maxTrials: 40``) searching 4 parameters (``SPACE``: the
learning rate and weight decay on log scales, the batch size, the width of the network),
maximizing the test ``accuracy`` the script logs per epoch. Two methods, each with the
same seeds: ``random`` without early stopping, and ``tpe`` (``TPE``: multivariate, 5
startup trials) with Hyperband pruning (``HYPERBAND``: ``min_resource 2, max_resource
10, reduction_factor 3``); benchmarks/tuning_settings.py is how these were chosen. The
platform seeds a search's sampler with ``seed + number of trials so far`` for each new
trial, so seeds close together would replay one another's points shifted by one trial:
the seeds are ``SEED_STRIDE`` apart. After each search the benchmark reads its Trials (in
``spec.number`` order, which is creation order) and the accuracy history of each trial's
tracking run, writes the search to the results file (so a crash loses at most one
search; ``--resume`` skips the searches already there) and deletes the Experiment.

- A trial's **epochs** are the last step of its ``status.intermediate`` (the objective's
  history as the controller last read it; a pruned trial counts the epochs it had run
  when it was pruned). The history in the tracking run is recorded too
  (``epochs_logged``): a pruned trial's process runs on until it is stopped, so it may
  have logged more (points not yet sent when it is killed are lost, so this is a floor).
- The **target** is the median, over the seeds, of the best final accuracy random search
  reached within its budget.
- A search's **compute to the target** is the sum of its trials' epochs, in number order,
  up to and including the first trial whose final value reaches the target; a search
  that never reaches it counts every epoch it ran and is marked as not reaching it.
- Printed: per seed, each method's best and compute to the target; the medians over the
  seeds and their ratio (random / TPE), against the aim of 2.5. Also how many TPE trials
  were pruned only after their last epoch (their compute spent, their value dropped),
  and the ratio had those counted as completed with their last value (a what-if, not
  what the platform does).

**scale** (``--part scale``). One Experiment of 1,000 trials (``random``,
``parallelTrials: 4``, 500m CPU each) of ``benchmarks/tuning_objective.py``, which imports
no torch, logs one value and exits; the trial's command is a ``sh -c`` that runs it and
then prints ``exited <date +%s.%N>``. From just before ``Client.create`` to the first
read of the Experiment (every ``SCALE_POLL_S``) that shows it ended: the **wall time**;
the trials completed per minute; and the **overhead per trial**: wall x parallelTrials /
trials, minus the median wall time of the trial process itself, from the runtime's
``started`` file (written by the shim just before it starts the process: interpreter
start included) to the shell's ``exited`` line (the interpreter's teardown included).

To say where the time goes it also records, per trial: when the benchmark saw the Trial
and its TrainJob created and ended (two watches, in threads of this process, from before
the create), when the runtime launched the pod (``spec.json``'s mtime), started and
reaped its process (``started``, ``status.json``'s ``finishedAt``), and when the
objective ran its last Python code (its ``exit`` line, with the CPU seconds it used), all
with microseconds. An ended trial's TrainJob, pod and pod directory are deleted by
default, so a thread reads each pod's directory every ``POD_SCAN_S`` and keeps a pod's
times once its ``status.json`` is there; a pod removed before a scan saw it is left out
(the report says how many trials were timed). It also records the platform server's CPU
seconds (overall, and per tenth of the trials), the machine's busy CPU seconds, the CPU
the objectives and this process used. A new trial fills the slot a finished one left:
the ``j``-th trial created (``j`` >= parallelTrials) is paired with the
``(j - parallelTrials)``-th trial to end.

Results go to benchmarks/results/tuning.json (each part replaces its own entry; the other
is kept), with the commit measured. Results: docs/benchmarks.md.

Run: ``.venv/bin/python benchmarks/tuning.py`` (``--part efficiency|scale|all``,
``--seeds N``, ``--trials N`` per search, ``--scale-trials N``, ``--resume`` to keep the
searches the results file has, ``--report`` to print its figures and run nothing,
``--retain-trial-jobs`` to keep ended trials' jobs in the scale part). On 2 cores the
efficiency part takes about 30 minutes, the scale part about 7.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import itertools
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cnai import Client
from cnai.core.errors import NotFound
from cnai.tracking.sdk import TrackingClient
from cnai.tuning.api import Experiment, Trial
from common.cpu import cpu_busy_s, process_cpu_s
from common.provenance import code
from common.servers import Server, start_cnai, stop

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "tuning.json"
NAMESPACE = "default"
DIGITS = "examples/digits/train.py"
OBJECTIVE = "benchmarks/tuning_objective.py"
EXPERIMENT_LABEL = "cnai.io/experiment-name"  # keep in sync with cnai.tuning.api

EPOCHS = 10
EFFICIENCY_PARALLEL = 2
SEED_STRIDE = 1000  # > maxTrials: the platform seeds trial n of seed s with s + n
METHODS = ("random", "tpe")
# Chosen with benchmarks/tuning_settings.py (the same search run in-process with Optuna,
# no platform): TPE's multivariate mode with 5 random startup trials, and Hyperband from
# epoch 2 (at epoch 1 it prunes configurations that start slowly and end best).
TPE = {"multivariate": True, "n_startup_trials": 5}
HYPERBAND = {"min_resource": 2, "max_resource": EPOCHS, "reduction_factor": 3}
SPACE: list[dict[str, Any]] = [
    {"name": "lr", "type": "float", "min": 1e-5, "max": 1e-1, "log": True},
    {"name": "batch_size", "type": "categorical", "values": [16, 32, 64, 128, 256]},
    {"name": "width", "type": "float", "min": 0.125, "max": 2.0, "log": True},
    {"name": "weight_decay", "type": "float", "min": 1e-6, "max": 1e-1, "log": True},
]
SEARCH_POLL_S = 2.0
SEARCH_TIMEOUT_S = 120.0  # per trial of the budget

SCALE_PARALLEL = 4
SCALE_CPU = "500m"
SCALE_POLL_S = 0.5
SCALE_TIMEOUT_S = 10.0  # per trial
POD_SCAN_S = 0.1  # how often the pods' directories are looked at for ended pods
# The shell prints the time once the objective's process has gone (its teardown
# included); ``date +%N`` is GNU date's nanoseconds.
SCALE_COMMAND = [
    "sh",
    "-c",
    f'python {OBJECTIVE} "$@"; code=$?; echo "exited $(date +%s.%N)"; exit $code',
    "objective",
]
SCALE_SPACE: list[dict[str, Any]] = [
    {"name": "x", "type": "float", "min": -4, "max": 6},
    {"name": "y", "type": "float", "min": -5, "max": 3},
]

AIM_RATIO = 2.5  # TPE + Hyperband reaches the target on 2.5x less compute
AIM_OVERHEAD_S = 0.5  # the platform's overhead per trial, on 2 cores


# --------------------------------------------------------------------------- the platform


class Platform:
    """One ``cnai up`` for one part of the benchmark: start, run experiments, stop."""

    def __init__(self, prefix: str) -> None:
        self.home = Path(tempfile.mkdtemp(prefix=prefix))
        self.server: Server | None = None
        self.client: Client | None = None
        self.ready_s = 0.0

    def __enter__(self) -> Platform:
        t0 = time.perf_counter()
        self.server = start_cnai(self.home, None)  # not pinned: the trials need both CPUs
        self.client = Client(config_path=self.config)
        self.ready_s = time.perf_counter() - t0
        print(f"cnai up: ready in {self.ready_s:.1f} s (CNAI_HOME {self.home})", flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def config(self) -> Path:
        return self.home / "config.yaml"

    def tracking(self) -> TrackingClient:
        assert self.server is not None
        return TrackingClient(self.server.url, self.server.token or "", NAMESPACE)

    def run(
        self,
        body: dict[str, Any],
        timeout_s: float,
        poll_s: float,
        on_poll: Callable[[Experiment], None] | None = None,
    ) -> tuple[Experiment, float]:
        """Create the Experiment and read it every ``poll_s`` until it ended; returns it
        and the seconds from just before the create to the read that saw it end."""
        assert self.client is not None
        name = body["metadata"]["name"]
        t0 = time.perf_counter()
        self.client.create(body)
        while True:
            exp = self.client.get(Experiment, name, NAMESPACE)
            if on_poll is not None:
                on_poll(exp)
            if exp.status.phase.terminal:
                return exp, time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError(f"experiment {name} not ended after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def trials(self, name: str) -> list[Trial]:
        assert self.client is not None
        listed = self.client.list(Trial, NAMESPACE, label_selector=f"{EXPERIMENT_LABEL}={name}")
        return sorted(listed.items, key=lambda t: t.spec.number)

    def delete(self, name: str, timeout_s: float = 120.0) -> None:
        """Delete the Experiment and wait until the garbage collector took its TrainJobs."""
        assert self.client is not None
        with contextlib.suppress(NotFound):
            self.client.delete(Experiment, name, NAMESPACE)
        selector = f"{EXPERIMENT_LABEL}={name}"
        deadline = time.monotonic() + timeout_s
        while self.client.list("TrainJob", NAMESPACE, label_selector=selector).items:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the TrainJobs of experiment {name} are still there")
            time.sleep(0.5)

    def close(self) -> None:
        """Stop the platform, then kill any pod process that outlived it (pods run under
        shims that outlive the platform by design), then remove its home."""
        try:
            if self.client is not None:
                self.client.close()
        finally:
            if self.server is not None:
                stop(self.server)
            kill_leftover_pods(self.home / "pods")
            shutil.rmtree(self.home, ignore_errors=True)


def kill_leftover_pods(pods: Path) -> None:
    """SIGKILL the process group and the shim of every pod under ``pods`` still running
    (each pid checked against its command line first, so a reused pid is left alone)."""
    for pod in pods.glob("*"):
        for pid_file, marks, kill in (
            ("child.pid", (DIGITS, OBJECTIVE), os.killpg),
            ("shim.pid", (str(pod),), os.kill),
        ):
            with contextlib.suppress(OSError, ValueError):
                pid = int((pod / pid_file).read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
                if any(mark in cmdline for mark in marks):
                    kill(pid, signal.SIGKILL)


def experiment(
    name: str,
    space: list[dict[str, Any]],
    command: list[str],
    objective: dict[str, Any],
    cpu: str,
    **spec: Any,
) -> dict[str, Any]:
    """An Experiment whose trials run ``command`` plus ``--NAME ${trial.params.NAME}`` for
    each parameter, as a one-node TrainJob that asks for ``cpu``."""
    args = [a for p in space for a in (f"--{p['name']}".replace("_", "-"), _ref(p["name"]))]
    template = {
        "trainer": {
            "numNodes": 1,
            "command": [*command, *args],
            "workingDir": str(ROOT),
            "resourcesPerNode": {"requests": {"cpu": cpu}},
            "terminationGracePeriodSeconds": 2,
        },
        "backoffLimit": 0,
    }
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"parameters": space, "objective": objective, "trialTemplate": template, **spec},
    }


def _ref(name: str) -> str:
    return f"${{trial.params.{name}}}"


def spread(values: list[float], digits: int = 3) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


# ----------------------------------------------------------------------------- efficiency


def search_body(method: str, seed: int, trials: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "algorithm": {
            "name": method,
            "seed": seed,
            **({"settings": TPE} if method == "tpe" else {}),
        },
        "parallelTrials": EFFICIENCY_PARALLEL,
        "maxTrials": trials,
        "maxFailedTrials": trials,  # a failed trial is counted, never the end of the search
    }
    if method == "tpe":
        spec["earlyStopping"] = {"name": "hyperband", "settings": HYPERBAND}
    return experiment(
        f"{method}-{seed}",
        SPACE,
        ["python", DIGITS, "--epochs", str(EPOCHS)],
        {"metric": "accuracy", "goal": "maximize"},
        "1",
        **spec,
    )


def trial_record(trial: Trial, logged: dict[str, list[Any]] | None) -> dict[str, Any]:
    """What the benchmark keeps of one trial."""
    steps = [int(s) for s in trial.status.intermediate]
    status = trial.status
    return {
        "number": trial.spec.number,
        "phase": status.phase.value,
        "params": trial.spec.params,
        "value": status.values[0] if status.values else None,
        "epochs": max(steps, default=0),
        "epochs_logged": max(logged["steps"], default=0) if logged else 0,
        "intermediate": {str(s): status.intermediate[str(s)] for s in sorted(steps)},
        "message": status.message,
    }


def run_search(p: Platform, method: str, seed: int, trials: int) -> dict[str, Any]:
    """One search to its end; its trials as records; the Experiment deleted after."""
    body = search_body(method, seed, trials)
    name = body["metadata"]["name"]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load = os.getloadavg()[0]
    try:
        exp, wall = p.run(body, SEARCH_TIMEOUT_S * trials, SEARCH_POLL_S)
        found = p.trials(name)
        runs = [t.status.run_id for t in found if t.status.run_id]
        with p.tracking() as tracking:
            logged = tracking.histories(runs, "accuracy") if runs else {}
    finally:
        p.delete(name)
    s = exp.status
    return {
        "method": method,
        "seed": seed,
        "started": started,
        "loadavg_start": round(load, 2),
        "loadavg_end": round(os.getloadavg()[0], 2),
        "wall_s": round(wall, 1),
        "phase": s.phase.value,
        "reason": s.reason,
        "counts": {"succeeded": s.succeeded, "pruned": s.pruned, "failed": s.failed},
        "trials": [trial_record(t, logged.get(t.status.run_id)) for t in found],
    }


def best_value(search: dict[str, Any]) -> float:
    return max((t["value"] for t in search["trials"] if t["value"] is not None), default=0.0)


def final_value(trial: dict[str, Any], last_step_counts: bool = False) -> float | None:
    """The trial's final objective value; with ``last_step_counts``, a trial pruned once
    it had run every epoch also counts, with its value at the last epoch."""
    value: float | None = None
    if trial["phase"] == "Succeeded":
        value = trial["value"]
    elif last_step_counts and trial["phase"] == "Pruned" and trial["epochs"] >= EPOCHS:
        value = trial["intermediate"].get(str(EPOCHS))
    return value


def to_target(
    search: dict[str, Any], target: float, key: str = "epochs", last_step_counts: bool = False
) -> dict[str, Any]:
    """Epochs spent until (and including) the first trial that reached ``target``."""
    spent = 0
    for t in search["trials"]:
        spent += t[key]
        value = final_value(t, last_step_counts)
        if value is not None and value >= target:
            return {"epochs": spent, "reached": True, "trial": t["number"]}
    return {"epochs": spent, "reached": False, "trial": None}


def summarize_efficiency(searches: dict[str, dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    by = {m: [searches[f"{m}-{s}"] for s in seeds] for m in METHODS}
    target = statistics.median(best_value(r) for r in by["random"])
    out: dict[str, Any] = {"target": round(target, 4), "per_seed": [], "methods": {}}
    for seed, rnd, tpe in zip(seeds, by["random"], by["tpe"], strict=True):
        out["per_seed"].append(
            {
                "seed": seed,
                **{
                    m: {
                        "best": round(best_value(r), 4),
                        "to_target": to_target(r, target),
                        "to_target_logged": to_target(r, target, "epochs_logged"),
                        "to_target_last_step_counts": to_target(r, target, last_step_counts=True),
                        "pruned_at_last_step": sum(
                            t["phase"] == "Pruned" and t["epochs"] >= EPOCHS for t in r["trials"]
                        ),
                        "total_epochs": sum(t["epochs"] for t in r["trials"]),
                        "pruned": r["counts"]["pruned"],
                        "failed": r["counts"]["failed"],
                        "wall_s": r["wall_s"],
                    }
                    for m, r in (("random", rnd), ("tpe", tpe))
                },
            }
        )
    for m in METHODS:
        rows = [row[m] for row in out["per_seed"]]
        out["methods"][m] = {
            "median_to_target": statistics.median(r["to_target"]["epochs"] for r in rows),
            "median_to_target_logged": statistics.median(
                r["to_target_logged"]["epochs"] for r in rows
            ),
            "median_to_target_last_step_counts": statistics.median(
                r["to_target_last_step_counts"]["epochs"] for r in rows
            ),
            "reached": sum(r["to_target"]["reached"] for r in rows),
            "median_best": round(statistics.median(r["best"] for r in rows), 4),
            "median_total_epochs": statistics.median(r["total_epochs"] for r in rows),
            "median_wall_s": statistics.median(r["wall_s"] for r in rows),
        }
    m = out["methods"]
    ratio = m["random"]["median_to_target"] / max(m["tpe"]["median_to_target"], 1)
    logged = m["random"]["median_to_target_logged"] / max(m["tpe"]["median_to_target_logged"], 1)
    counted = m["random"]["median_to_target"] / max(
        m["tpe"]["median_to_target_last_step_counts"], 1
    )
    out["ratio"] = round(ratio, 2)
    out["ratio_logged"] = round(logged, 2)
    out["ratio_if_last_step_counted"] = round(counted, 2)
    out["aim_met"] = ratio >= AIM_RATIO
    out["pruning_lag"] = pruning_lag(by["tpe"])
    return out


def pruning_lag(searches: list[dict[str, Any]]) -> dict[str, Any]:
    """How many more epochs pruned trials logged than the controller had seen when it
    pruned them (their processes run on until stopped)."""
    lags = [
        t["epochs_logged"] - t["epochs"]
        for r in searches
        for t in r["trials"]
        if t["phase"] == "Pruned"
    ]
    if not lags:
        return {"pruned": 0}
    return {"pruned": len(lags), "mean": round(statistics.mean(lags), 2), "max": max(lags)}


def run_efficiency(
    args: argparse.Namespace, save: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    seeds = [SEED_STRIDE * i for i in range(args.seeds)]
    settings = {
        "trials": args.trials,
        "epochs": EPOCHS,
        "parallel_trials": EFFICIENCY_PARALLEL,
        "space": SPACE,
        "tpe": TPE,
        "hyperband": HYPERBAND,
    }
    part = _previous(args, "efficiency", settings)
    part |= {"settings": settings, "seeds": seeds, "machine": machine()}
    part.setdefault("commands", []).append(_command())
    searches: dict[str, dict[str, Any]] = part.setdefault("searches", {})
    kept = [k for k in searches if k in {f"{m}-{s}" for m in METHODS for s in seeds}]
    if kept:
        print(f"kept from {args.json}: {', '.join(kept)}", flush=True)
    # The methods alternate, so a busier hour of the machine hurts both alike.
    todo = [(m, s) for s in seeds for m in METHODS if f"{m}-{s}" not in searches]
    with contextlib.ExitStack() as stack:
        p = stack.enter_context(Platform("cnai-bench-tuning-")) if todo else None
        for method, seed in todo:
            assert p is not None
            key = f"{method}-{seed}"
            searches[key] = run_search(p, method, seed, args.trials)
            r = searches[key]
            print(
                f"{key}: {r['phase']} in {r['wall_s']:.0f} s, best {best_value(r):.4f}, "
                f"{sum(t['epochs'] for t in r['trials'])} epochs, {r['counts']}",
                flush=True,
            )
            part["date"] = datetime.now(UTC).isoformat(timespec="seconds")
            save(part)
    part["summary"] = summarize_efficiency(searches, seeds)
    return part


def _previous(args: argparse.Namespace, key: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The part as the results file has it, if ``--resume`` and run with these settings."""
    if not args.resume or not args.json.exists():
        return {}
    part: dict[str, Any] = json.loads(args.json.read_text()).get(key, {})
    if part.get("settings") != settings:
        print(f"--resume: {args.json} has other settings for {key}; starting afresh")
        return {}
    part.pop("summary", None)
    return part


# ---------------------------------------------------------------------------------- scale


class Watcher(threading.Thread):
    """Records when each object of one kind and experiment is seen created and ended."""

    def __init__(self, config: Path, kind: str, experiment: str) -> None:
        super().__init__(daemon=True, name=f"watch-{kind}")
        self.config, self.kind, self.experiment = config, kind, experiment
        self.created: dict[str, float] = {}
        self.ended: dict[str, tuple[float, str]] = {}
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        try:
            with Client(config_path=self.config) as client:
                self._follow(client)
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()

    def _follow(self, client: Client) -> None:
        selector = f"{EXPERIMENT_LABEL}={self.experiment}"
        version = client.list(self.kind, NAMESPACE, label_selector=selector).resource_version
        self.ready.set()
        while not self._done.is_set():
            for event in client.watch(
                self.kind,
                NAMESPACE,
                label_selector=selector,
                resource_version=version,
                timeout_seconds=2,
            ):
                self._record(event.type, event.object.to_dict(), time.time())
                version = event.object.metadata.resource_version or version

    def _record(self, kind: str, obj: dict[str, Any], at: float) -> None:
        name = obj["metadata"]["name"]
        self.created.setdefault(name, at)
        phase = (obj.get("status") or {}).get("phase", "")
        if phase in ("Succeeded", "Failed", "Pruned") and name not in self.ended:
            self.ended[name] = (at, phase)

    def finish(self) -> None:
        self._done.set()
        self.join(10.0)
        if self.error is not None:
            raise self.error


class PodFiles(threading.Thread):
    """Reads each pod's runtime files once its process has ended, while the pod still
    exists (an Experiment deletes an ended trial's TrainJob, and so its pod and files,
    unless ``retainTrialJobs``): per trial, when its pod was launched (``spec.json``'s
    mtime), its process started, ran its last Python code, was gone, and was reaped by
    the shim (``status.json``'s ``finishedAt``), and the CPU seconds the objective used."""

    def __init__(self, pods: Path) -> None:
        super().__init__(daemon=True, name="pod-files")
        self.pods = pods
        self.times: dict[str, dict[str, float]] = {}
        self._read: set[str] = set()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self._scan()
            time.sleep(POD_SCAN_S)
        self._scan()

    def finish(self) -> None:
        self._done.set()
        self.join(30.0)

    def _scan(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            for d in self.pods.iterdir():
                if d.name not in self._read:
                    with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
                        self._read_pod(d)

    def _read_pod(self, d: Path) -> None:
        status = json.loads((d / "status.json").read_text())  # absent until it ended
        spec = d / "spec.json"
        started = datetime.fromisoformat((d / "started").read_text().strip())
        words = {ln.split()[0]: ln.split() for ln in (d / "output.log").read_text().splitlines()}
        trial = json.loads(spec.read_text())["name"].rsplit("-", 2)[0]  # pod: <job>-<gang>-<rank>
        self.times[trial] = {
            "launched": spec.stat().st_mtime,
            "started": started.timestamp(),
            "python_done": float(words["exit"][1]),
            "exited": float(words["exited"][1]),
            "reaped": datetime.fromisoformat(status["finishedAt"]).timestamp(),
            "cpu_s": float(words["exit"][3]),
        }
        self._read.add(d.name)


STAGES = (
    ("trial_created", "job_created", "Trial seen created -> its TrainJob seen created"),
    ("job_created", "launched", "TrainJob seen created -> pod launched (runtime)"),
    ("launched", "started", "pod launched -> process started (shim)"),
    ("started", "exited", "process started -> process gone (the trial itself)"),
    ("started", "python_done", "  of which: to the objective's last Python code"),
    ("python_done", "exited", "  of which: interpreter teardown, shell, date"),
    ("exited", "reaped", "process gone -> reaped by the shim"),
    ("reaped", "job_ended", "reaped -> TrainJob seen Succeeded"),
    ("job_ended", "trial_ended", "TrainJob seen Succeeded -> Trial seen Succeeded"),
)


def timelines(
    trials: Watcher, jobs: Watcher, pods: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """Per trial with every time known, the moments of STAGES (unix seconds)."""
    out = []
    for name, created in trials.created.items():
        if name not in trials.ended or name not in jobs.ended or name not in pods:
            continue
        out.append(
            {
                "name": name,
                "trial_created": created,
                "job_created": jobs.created[name],
                **pods[name],
                "job_ended": jobs.ended[name][0],
                "trial_ended": trials.ended[name][0],
            }
        )
    return out


def refill_gaps(trials: Watcher, parallel: int) -> list[float]:
    """Seconds from a trial seen ending to the creation of the trial that took its slot:
    the j-th created (j >= parallel) against the (j - parallel)-th to end."""
    created = sorted(trials.created.values())
    ended = sorted(at for at, _ in trials.ended.values())
    return [c - e for c, e in zip(created[parallel:], ended, strict=False)]


def per_decile(trials: Watcher) -> list[float]:
    """Trials ended per minute over each tenth of the run (by the order they ended)."""
    ended = sorted(at for at, _ in trials.ended.values())
    step = max(len(ended) // 10, 1)
    marks = ended[::step]
    return [round(step * 60 / (b - a), 1) for a, b in itertools.pairwise(marks) if b > a]


def server_cpu_by_decile(samples: list[tuple[float, float, int]], n: int) -> list[float]:
    """The server's CPU seconds per trial ended, over each tenth of the trials (from the
    Experiment's counts, read every SCALE_POLL_S with the server's CPU time)."""
    out, last = [], (0.0, 0)
    for k in range(1, 11):
        at = next((s for s in samples if s[2] >= k * n // 10), None)
        if at is None or at[2] == last[1]:
            continue
        out.append(round((at[1] - last[0]) / (at[2] - last[1]), 3))
        last = (at[1], at[2])
    return out


def run_scale(args: argparse.Namespace) -> dict[str, Any]:
    n = args.scale_trials
    body = experiment(
        "scale",
        SCALE_SPACE,
        SCALE_COMMAND,
        {"metric": "score", "goal": "maximize"},
        SCALE_CPU,
        algorithm={"name": "random", "seed": 0},
        parallelTrials=SCALE_PARALLEL,
        maxTrials=n,
        retainTrialJobs=args.retain_trial_jobs,
    )
    host = machine()  # before the platform starts: the commit it loads
    with Platform("cnai-bench-tuning-scale-") as p:
        assert p.server is not None
        watchers = [Watcher(p.config, kind, "scale") for kind in ("Trial", "TrainJob")]
        for w in watchers:
            w.start()
            w.ready.wait(30)
        files = PodFiles(p.home / "pods")
        files.start()
        pid = p.server.proc.pid
        cpu0, busy0, own0 = process_cpu_s(pid), cpu_busy_s(None), _own_cpu_s()
        samples: list[tuple[float, float, int]] = []  # (time, server CPU, trials ended)

        def sample(exp: Experiment) -> None:
            ended = exp.status.succeeded + exp.status.pruned + exp.status.failed
            samples.append((time.time(), process_cpu_s(pid) - cpu0, ended))

        exp, wall = p.run(body, SCALE_TIMEOUT_S * n, SCALE_POLL_S, sample)
        server_cpu = process_cpu_s(pid) - cpu0
        busy, own = cpu_busy_s(None) - busy0, _own_cpu_s() - own0
        time.sleep(1.0)  # the last events
        for w in watchers:
            w.finish()
        files.finish()
        pods = files.times
        ready_s = p.ready_s
    trials, jobs = watchers
    lines = timelines(trials, jobs, pods)
    process = [t["exited"] - t["started"] for t in lines]
    s = exp.status
    median_process = statistics.median(process)
    overhead = wall * SCALE_PARALLEL / n - median_process
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": _command(),
        "settings": {
            "trials": n,
            "parallel_trials": SCALE_PARALLEL,
            "retain_trial_jobs": args.retain_trial_jobs,
            "cpu": SCALE_CPU,
            "poll_s": SCALE_POLL_S,
        },
        "machine": host | {"loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "cnai_ready_s": round(ready_s, 2),
        "phase": s.phase.value,
        "reason": s.reason,
        "counts": {"succeeded": s.succeeded, "pruned": s.pruned, "failed": s.failed},
        "wall_s": round(wall, 2),
        "trials_per_minute": round(s.succeeded * 60 / wall, 1),
        "process_s": spread(process),
        "overhead_per_trial_s": round(overhead, 3),
        "aim_met": overhead < AIM_OVERHEAD_S,
        "cpu_s": {
            "machine_busy": round(busy, 1),
            "server": round(server_cpu, 1),
            "trial_processes": round(sum(t["cpu_s"] for t in lines), 1),
            "benchmark": round(own, 1),
            "rest": round(busy - server_cpu - sum(t["cpu_s"] for t in lines) - own, 1),
        },
        "stages": {
            f"{a}_to_{b}": {**spread([t[b] - t[a] for t in lines]), "label": label}
            for a, b, label in STAGES
        },
        "created_to_ended_s": spread([t["trial_ended"] - t["trial_created"] for t in lines]),
        "refill_s": spread(refill_gaps(trials, SCALE_PARALLEL)),
        "trials_per_minute_by_decile": per_decile(trials),
        "server_cpu_per_trial_by_decile": server_cpu_by_decile(samples, n),
        "timed_trials": len(lines),
        "trials": lines,
    }


# ----------------------------------------------------------------------------------- report


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, Any]:
    return {
        "code": code(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": importlib.metadata.version("torch"),
        "optuna": importlib.metadata.version("optuna"),
        "platform": platform.platform(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def _command() -> str:
    return " ".join(["python", "benchmarks/tuning.py", *sys.argv[1:]])


def _to(row: dict[str, Any]) -> str:
    t = row["to_target"]
    return f"{t['epochs']:>4}{'' if t['reached'] else '*':1} (#{t['trial']})".replace(
        "(#None)", "(none)"
    )


def report_efficiency(part: dict[str, Any]) -> str:
    s, st = part["summary"], part["settings"]
    row = "  {:>6}  {:>7}  {:>16}  {:>7}    {:>7}  {:>16}  {:>7}  {:>6}"
    lines = [
        f"Efficiency ({part['date']}): digits, {len(SPACE)} parameters, {st['trials']} trials "
        f"of up to {st['epochs']} epochs, {st['parallel_trials']} at once; "
        f"target accuracy {s['target']:.4f} (median of random's bests)",
        "",
        row.format("", "random", "", "", "tpe+hb", "", "", ""),
        row.format(
            "seed",
            "best",
            "epochs to target",
            "epochs",
            "best",
            "epochs to target",
            "epochs",
            "pruned",
        ),
    ]
    for r in s["per_seed"]:
        a, b = r["random"], r["tpe"]
        lines.append(
            row.format(
                r["seed"],
                f"{a['best']:.4f}",
                _to(a),
                a["total_epochs"],
                f"{b['best']:.4f}",
                _to(b),
                b["total_epochs"],
                b["pruned"],
            )
        )
    m = s["methods"]
    lines += [
        row.format(
            "median",
            f"{m['random']['median_best']:.4f}",
            m["random"]["median_to_target"],
            m["random"]["median_total_epochs"],
            f"{m['tpe']['median_best']:.4f}",
            m["tpe"]["median_to_target"],
            m["tpe"]["median_total_epochs"],
            "",
        ),
        "  (* never reached the target: every epoch of the search counted)",
        "",
        f"  compute to the target, random / TPE+Hyperband (medians): {s['ratio']:.2f}x "
        f"(aim {AIM_RATIO:g}x: {'met' if s['aim_met'] else 'NOT met'}); by the epochs the "
        f"runs logged: {s['ratio_logged']:.2f}x",
        f"  reached the target: random {m['random']['reached']}/{len(s['per_seed'])}, "
        f"TPE {m['tpe']['reached']}/{len(s['per_seed'])}; median wall per search: random "
        f"{m['random']['median_wall_s']:.0f} s, TPE {m['tpe']['median_wall_s']:.0f} s",
        f"  pruned trials logged more epochs than the controller saw: {s['pruning_lag']}",
        f"  TPE trials pruned after their last epoch (compute spent, value dropped): "
        f"{[r['tpe']['pruned_at_last_step'] for r in s['per_seed']]} per seed; counted as "
        f"completed with their last value, TPE would need "
        f"{m['tpe']['median_to_target_last_step_counts']} epochs "
        f"({s['ratio_if_last_step_counted']:.2f}x; not how cnai behaves)",
    ]
    return "\n".join(lines)


def _fmt(s: dict[str, float]) -> str:
    return f"{s['median']:.3f} [{s['min']:.3f}-{s['max']:.3f}]"


def report_scale(r: dict[str, Any]) -> str:
    st = r["settings"]
    lines = [
        f"Control-plane scale ({r['date']}): {st['trials']} trials of {OBJECTIVE}, "
        f"{st['parallel_trials']} at once, {st['cpu']} CPU each: {r['phase']} "
        f"({r['reason']}), {r['counts']}",
        "",
        f"  wall time                      {r['wall_s']:.1f} s",
        f"  trials completed per minute    {r['trials_per_minute']:.1f}",
        f"  trial process wall (median)    {r['process_s']['median']:.3f} s "
        f"[{r['process_s']['min']:.3f}-{r['process_s']['max']:.3f}]",
        f"  overhead per trial             {r['overhead_per_trial_s']:.3f} s "
        f"(= {r['wall_s']:.1f} x {st['parallel_trials']} / {st['trials']} - "
        f"{r['process_s']['median']:.3f}); aim under {AIM_OVERHEAD_S:g} s: "
        f"{'met' if r['aim_met'] else 'NOT met'}",
        f"  CPU seconds over the run: {r['cpu_s']} (rest: shims and anything else)",
        "",
        f"  where a trial's time goes ({r['timed_trials']} trials), seconds, median [min-max]:",
    ]
    lines += [f"    {v['label']:<52}{_fmt(v):>24}" for v in r["stages"].values()]
    lines += [
        f"    {'Trial created -> Trial seen Succeeded':<52}{_fmt(r['created_to_ended_s']):>24}",
        f"    {'a trial ended -> the next trial created':<52}{_fmt(r['refill_s']):>24}",
        f"  trials per minute by tenth of the run: {r['trials_per_minute_by_decile']}",
        f"  server CPU seconds per trial by tenth: {r['server_cpu_per_trial_by_decile']}",
    ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("efficiency", "scale", "all"), default="all")
    p.add_argument("--seeds", type=int, default=5, help="seeds per method (default 5)")
    p.add_argument("--trials", type=int, default=40, help="trials per search (default 40)")
    p.add_argument("--scale-trials", type=int, default=1000, help="(default 1000)")
    p.add_argument("--resume", action="store_true", help="keep the searches the results file has")
    p.add_argument(
        "--retain-trial-jobs",
        action="store_true",
        help="scale: keep ended trials' TrainJobs and pods (retainTrialJobs), for diagnosis",
    )
    p.add_argument(
        "--report", action="store_true", help="print the results file's figures; run nothing"
    )
    p.add_argument("--json", type=Path, default=RESULTS)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"benchmark": "tuning"}
    if args.json.exists():
        results = json.loads(args.json.read_text())

    def save(key: str, part: dict[str, Any]) -> None:
        results[key] = part
        args.json.write_text(json.dumps(results, indent=2) + "\n")

    if args.report:  # from the results file: recompute the summary, print, run nothing
        if "efficiency" in results:
            part = results["efficiency"]
            done = [
                x for x in part["seeds"] if all(f"{m}-{x}" in part["searches"] for m in METHODS)
            ]
            part["summary"] = summarize_efficiency(part["searches"], done)
            if done == part["seeds"]:
                save("efficiency", part)
            print(report_efficiency(part))
        if "scale" in results:
            print()
            print(report_scale(results["scale"]))
        return 0
    if args.part in ("efficiency", "all"):
        part = run_efficiency(args, lambda part: save("efficiency", part))
        save("efficiency", part)
        print()
        print(report_efficiency(part), flush=True)
    if args.part in ("scale", "all"):
        part = run_scale(args)
        save("scale", part)
        print()
        print(report_scale(part), flush=True)
    print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
