"""The dashboard at scale: cnai's runs page and 20-run metric overlay beside MLflow's UI.

Data, the same in both: 1,000 runs (``--runs``) of one experiment, each with 2 params
and 10 metrics x 1,000 steps (``--steps``), 10,000,000 points in all; run i's metric k
at step s is :func:`value` (exact in binary floating point), at timestamp T0 + s ms.

- cnai: ``cnai up`` in a fresh temporary CNAI_HOME, seeded through the tracking API's
  bulk path, as the SDK sends it: one ``POST runs/{id}/log`` per run carrying its 10
  metrics as columns, from 4 client threads (about 20 s).
- MLflow (``mlflow==3.17.2``, the full package, which ships its UI, in its own
  environment ``benchmarks/.venvs/mlflow``, made on first use): logged through the MLflow
  client, ``MlflowClient.log_batch`` with 1,000 metrics per batch (100 steps x 10 metrics;
  MLflow's limit) and the params in the run's first batch, from 2 threads. The client
  writes to the SQLite file directly (``sqlite:///`` tracking URI: MLflow's own
  SqlAlchemyStore, the code the server would run) because through the server it ingests
  about 4,400 points/s here (docs/benchmarks.md, "Experiment tracking"), 38 minutes for
  this data; directly, 3,500 to 9,000 points/s depending on the machine's other load
  (20 to 50 minutes). The seeded file is cached under
  ``benchmarks/results/dashboard-cache/`` (keyed by the data's shape and MLflow's
  version) and reused by later runs; a seeding that was stopped resumes. The UI is then
  served by ``mlflow server --backend-store-uri sqlite:///DB`` with its defaults (4
  uvicorn workers), started by the benchmark on 127.0.0.1.

Measured in Debian's headless Chromium (the flags of tests/e2e/conftest.py), driven by
Selenium; each page load is a new navigation (about:blank first), the browser's cache
warm from an untimed first load, as for a user who comes back to the page. A load's time
is from the navigation's start (``performance.timeOrigin``) until both (1) the page's
"done" condition holds and (2) its network is idle: no fetch or XMLHttpRequest in flight
(counted by a script injected before the page's own, through the DevTools protocol) and
none started for 1 s after; the time is the later of the condition's first moment and
the last response's end (Resource Timing). The injected script checks the condition
every 10 ms in the page, so polling from the driver adds nothing.

- Runs page. cnai: ``#/runs/NS``, condition ``body[data-runs-ready]`` (set once the
  table has rendered the first page's data: 50 runs with their latest metrics).
  MLflow: ``#/experiments/ID/runs``, the experiment's "Training runs" table (MLflow
  loads 100 runs per page, with their latest metrics), condition: at least 10 run rows
  rendered in its grid (``.ag-center-cols-container .ag-row``; the grid virtualizes, so
  only the visible rows exist). (``#/experiments/ID`` alone opens MLflow 3's GenAI
  overview for an experiment without a kind.)
- 20-run metric overlay (the 20 newest runs, metric ``loss``). cnai:
  ``#/runs/NS/compare?ids=...&metric=loss``, condition ``body[data-chart-ready]`` (set
  by uPlot's draw hook once the chart of the 20 histories is drawn). MLflow: its metric
  page for selected runs, the one "Compare" then a metric's name opens
  (``#/metric?runs=[...]&metric="loss"&experiments=[ID]&plot_metric_keys=["loss"]``),
  which draws the runs' histories of one metric as lines on one Plotly chart: the same
  task. Condition: the Plotly chart holds 20 drawn lines (``.js-plotly-plot
  .scatterlayer .trace .lines path`` with a path; MLflow adds a second, empty trace
  per run). MLflow's experiment page also has a chart view, but it draws one chart per
  metric for the visible runs (a different task), so the metric page is the fair peer.

Each of the 4 (page, system) pairs: one untimed load, then ``--repeats`` (5) timed
loads; the median is reported with min and max, and the ratio MLflow / cnai (above 1:
cnai is faster). Aims (issue 9): under 2 s each, and faster than MLflow's UI.

Run: ``.venv/bin/python benchmarks/dashboard.py`` (``--runs 100`` for a quick look;
``--only cnai``). Results: benchmarks/results/dashboard.json and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venvs" / "mlflow"
CACHE = BENCH / "results" / "dashboard-cache"
RESULTS = BENCH / "results" / "dashboard.json"
MLFLOW = "mlflow==3.17.2"
KEYS = [
    "loss",
    "acc",
    "val_loss",
    "val_acc",
    "lr",
    "grad_norm",
    "throughput",
    "f1",
    "precision",
    "recall",
]
T0_MS = 1_700_000_000_000
EXPERIMENT = "dashboard-bench"
OVERLAY_RUNS = 20
OVERLAY_METRIC = "loss"
MLFLOW_STEPS_PER_BATCH = 100  # x 10 metrics = 1,000, MLflow's most per log_batch
LOAD_TIMEOUT_S = 180.0
QUIET_S = 1.0
AIM_S = 2.0
CHROMIUM = os.environ.get("CNAI_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CNAI_CHROMEDRIVER", "/usr/bin/chromedriver")
# Keep in sync with tests/e2e/conftest.py CHROMIUM_FLAGS.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def value(run: int, key: int, step: int) -> float:
    """Run ``run``'s metric ``key`` at ``step``: a decaying curve, exact in binary."""
    return (key + 1) + (run % 64) / 64.0 + 64.0 / (step + 64)


def run_name(run: int) -> str:
    return f"run-{run:04d}"


# ----------------------------------------------------------------------------- MLflow


def seed_mlflow(db: Path, runs: int, steps: int, threads: int = 2) -> None:
    """Log the data through the MLflow client into the SQLite file ``db`` (run in the
    MLflow environment: ``python dashboard.py seed-mlflow DB RUNS STEPS``)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunStatus

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is None:
        artifacts = str(db.parent / "mlflow-artifacts")
        experiment = client.create_experiment(EXPERIMENT, artifact_location=artifacts)
    else:  # resuming a seeding that was stopped: keep the finished runs, redo the others
        experiment = found.experiment_id
    done: set[str] = set()
    for run in client.search_runs([experiment], max_results=50_000):
        if run.info.status == "FINISHED":
            done.add(run.info.run_name)
        else:
            client.delete_run(run.info.run_id)
    todo = [i for i in range(runs) if run_name(i) not in done]
    if done:
        print(f"  mlflow: resuming, {len(done)} runs already logged", flush=True)

    def one(i: int) -> None:
        run = client.create_run(experiment, start_time=T0_MS + i * 1000, run_name=run_name(i))
        run_id = run.info.run_id
        for first in range(0, steps, MLFLOW_STEPS_PER_BATCH):
            span = range(first, min(steps, first + MLFLOW_STEPS_PER_BATCH))
            metrics = [
                Metric(k, value(i, n, s), T0_MS + s, s) for s in span for n, k in enumerate(KEYS)
            ]
            params = (
                [Param("lr", str(0.001 * (i % 10 + 1))), Param("batch_size", "64")]
                if first == 0
                else []
            )
            client.log_batch(run_id, metrics=metrics, params=params)
        client.set_terminated(
            run_id, RunStatus.to_string(RunStatus.FINISHED), T0_MS + i * 1000 + 60_000
        )

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for n, _ in enumerate(pool.map(one, todo), 1):
            if n % 50 == 0:
                rate = n * steps * len(KEYS) / (time.monotonic() - started)
                print(f"  mlflow: {n}/{len(todo)} runs, {rate:,.0f} points/s", flush=True)


def ensure_mlflow_env() -> Path:
    """``benchmarks/.venvs/mlflow`` with MLFLOW installed; its python."""
    python = VENV / "bin" / "python"
    stamp = VENV / "bench-pins.txt"
    if python.exists() and stamp.is_file() and stamp.read_text() == MLFLOW + "\n":
        return python
    print(f"making the mlflow environment in {VENV.relative_to(ROOT)} ...", flush=True)
    shutil.rmtree(VENV, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", MLFLOW]
    subprocess.run(pip, check=True)
    stamp.write_text(MLFLOW + "\n")
    return python


def mlflow_db(python: Path, runs: int, steps: int) -> tuple[Path, float | None]:
    """The seeded MLflow database (cached); seconds spent seeding, None if cached."""
    db = CACHE / f"mlflow-{MLFLOW.split('==')[1]}-{runs}x{len(KEYS)}x{steps}.db"
    if db.is_file():
        return db, None
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = db.with_suffix(".partial.db")  # resumed if a seeding was stopped
    print(f"seeding MLflow ({runs} runs x {len(KEYS)} x {steps}) into {partial} ...", flush=True)
    started = time.monotonic()
    cmd = [
        str(python),
        str(Path(__file__).resolve()),
        "seed-mlflow",
        str(partial),
        str(runs),
        str(steps),
    ]
    subprocess.run(cmd, check=True)
    seconds = time.monotonic() - started
    partial.rename(db)  # only a complete file is ever reused
    return db, seconds


# ------------------------------------------------------------------------------- cnai


def seed_cnai(url: str, token: str, runs: int, steps: int, threads: int = 4) -> list[str]:
    """Log the data into cnai's namespace ``default``; the run ids, oldest first."""
    from cnai.tracking.sdk import TrackingClient

    stamps = [T0_MS + s for s in range(steps)]

    def one(i: int) -> str:
        with TrackingClient(server=url, token=token, namespace="default", timeout=120) as c:
            params = {"lr": str(0.001 * (i % 10 + 1)), "batch_size": "64"}
            body = {"group": EXPERIMENT, "name": run_name(i), "params": params}
            run_id = str(c.create_run(**body, startTime=T0_MS + i * 1000)["id"])
            metrics = {
                k: {
                    "steps": list(range(steps)),
                    "values": [value(i, n, s) for s in range(steps)],
                    "timestamps": stamps,
                }
                for n, k in enumerate(KEYS)
            }
            c.request("POST", f"/runs/{run_id}/log", json={"metrics": metrics})
            c.update_run(run_id, status="FINISHED", endTime=T0_MS + i * 1000 + 60_000)
            return run_id

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(runs)))


# ---------------------------------------------------------------------------- browser

# Injected before the page's own scripts: counts fetches and XMLHttpRequests in flight
# and records when CONDITION first held (null again if it stops holding).
PROBE = """
(() => {
  const b = (window.__bench = { inflight: 0, lastStart: 0, condAt: null });
  const cond = () => { try { return Boolean(CONDITION); } catch (e) { return false; } };
  const start = () => { b.inflight += 1; b.lastStart = performance.now(); };
  const end = () => { b.inflight -= 1; };
  const fetch0 = window.fetch;
  window.fetch = function (...args) {
    start();
    const answer = fetch0.apply(this, args);
    answer.then(end, end);
    return answer;
  };
  const send0 = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    start();
    this.addEventListener("loadend", end);
    return send0.apply(this, args);
  };
  setInterval(() => {
    if (cond()) { if (b.condAt === null) b.condAt = performance.now(); } else b.condAt = null;
  }, 10);
})();
"""
STATE = """
const b = window.__bench;
if (!b) return null;
const ends = performance.getEntriesByType("resource").map((e) => e.responseEnd);
const before = performance.getEntriesByType("resource")
  .filter((e) => b.condAt !== null && e.startTime <= b.condAt).map((e) => e.responseEnd);
return {inflight: b.inflight, lastStart: b.lastStart, condAt: b.condAt, now: performance.now(),
        lastEnd: Math.max(0, ...ends), lastEndBefore: Math.max(0, ...before)};
"""
POLLING_GIVE_UP_S = 20.0  # network never idle this long after the condition: it polls


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def timed_load(driver: Any, url: str, condition: str) -> dict[str, Any]:
    """Load ``url`` afresh; ms from navigation start until ``condition`` holds and the
    network is idle (see the module docstring)."""
    probe = driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": PROBE.replace("CONDITION", condition)}
    )
    try:
        driver.get("about:blank")
        driver.get(url)
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            st = driver.execute_script(STATE)
            if st and st["condAt"] is not None:
                quiet = (
                    st["inflight"] == 0
                    and st["now"] - max(st["lastStart"], st["lastEnd"]) >= QUIET_S * 1000
                )
                if quiet:
                    return {"ms": max(st["condAt"], st["lastEnd"]), "polling": False}
                if st["now"] - st["condAt"] > POLLING_GIVE_UP_S * 1000:
                    return {"ms": max(st["condAt"], st["lastEndBefore"]), "polling": True}
            time.sleep(0.1)
        raise TimeoutError(f"{url}: {condition} not reached in {LOAD_TIMEOUT_S:.0f} s")
    finally:
        driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": probe["identifier"]}
        )


def measure(driver: Any, url: str, condition: str, repeats: int) -> dict[str, Any]:
    timed_load(driver, url, condition)  # untimed: fills the browser's cache
    loads = [timed_load(driver, url, condition) for _ in range(repeats)]
    ms = [load["ms"] for load in loads]
    return {
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "loads_ms": ms,
        "polling": any(load["polling"] for load in loads),
    }


# ----------------------------------------------------------------------------- systems


def bench_cnai(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from common.servers import start_cnai, stop

    server = start_cnai(workdir / "cnai-home", None)
    try:
        started = time.monotonic()
        ids = seed_cnai(server.url, str(server.token), args.runs, args.steps)
        seeded = time.monotonic() - started
        print(f"cnai: seeded {args.runs} runs in {seeded:.1f} s", flush=True)
        driver = browser()
        try:
            driver.get(server.url + "/")
            driver.execute_script(
                "sessionStorage.setItem('cnai.token', arguments[0])", server.token
            )
            runs_page = measure(
                driver,
                f"{server.url}/#/runs/default",
                "document.body.dataset.runsReady === '1'",
                args.repeats,
            )
            newest = ids[::-1][:OVERLAY_RUNS]
            ids_text = ",".join(newest)
            compare = f"{server.url}/#/runs/default/compare?ids={ids_text}&metric={OVERLAY_METRIC}"
            chart = (
                "document.body.dataset.chartReady === '1' && "
                f"document.querySelector('#compare-chart').dataset.series === '{OVERLAY_RUNS}'"
            )
            overlay = measure(driver, compare, chart, args.repeats)
        finally:
            driver.quit()
    finally:
        stop(server)
    return {"seed_s": seeded, "runs_page": runs_page, "overlay": overlay}


def bench_mlflow(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from common.servers import free_port, spawn, stop, wait_ready

    python = ensure_mlflow_env()
    db, seeded = mlflow_db(python, args.runs, args.steps)
    port = free_port()
    cmd = [str(python), "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}"]
    cmd += [
        "--default-artifact-root",
        str(workdir / "mlflow-artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = spawn(
        "mlflow", cmd, workdir / "mlflow.log", dict(os.environ), f"http://127.0.0.1:{port}"
    )
    try:
        wait_ready(server, "/health", timeout=LOAD_TIMEOUT_S)
        experiment, newest = mlflow_runs(server.url)
        driver = browser()
        try:
            rows = "document.querySelectorAll('.ag-center-cols-container .ag-row').length >= 10"
            runs_page = measure(
                driver, f"{server.url}/#/experiments/{experiment}/runs", rows, args.repeats
            )
            url = (
                f"{server.url}/#/metric?runs={quote(newest)}&metric=%22{OVERLAY_METRIC}%22"
                f"&experiments={quote([experiment])}&plot_metric_keys={quote([OVERLAY_METRIC])}"
            )
            drawn = (
                "[...document.querySelectorAll('.js-plotly-plot .scatterlayer .trace .lines path')]"
                ".filter((p) => (p.getAttribute('d') || '').length > 10).length"
            )
            lines = f"{drawn} >= {OVERLAY_RUNS}"
            overlay = measure(driver, url, lines, args.repeats)
        finally:
            driver.quit()
    finally:
        stop(server)
    return {"seed_s": seeded, "db": db.name, "runs_page": runs_page, "overlay": overlay}


def quote(items: list[str]) -> str:
    """A JSON list of strings as MLflow's UI writes it in a URL."""
    return "[" + ",".join(f"%22{i}%22" for i in items) + "]"


def mlflow_runs(url: str) -> tuple[str, list[str]]:
    """The benchmark experiment's id and its OVERLAY_RUNS newest runs' ids."""
    import httpx

    found = httpx.get(
        f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": EXPERIMENT}
    )
    experiment = str(found.json()["experiment"]["experiment_id"])
    body = {
        "experiment_ids": [experiment],
        "max_results": OVERLAY_RUNS,
        "order_by": ["attributes.start_time DESC"],
    }
    runs = httpx.post(f"{url}/api/2.0/mlflow/runs/search", json=body, timeout=60).json()["runs"]
    return experiment, [r["info"]["run_id"] for r in runs]


# ------------------------------------------------------------------------------- main


def report(results: dict[str, Any]) -> None:
    print(f"\n{'page':<22}{'system':<8}{'median ms':>11}{'min':>8}{'max':>8}  aim < {AIM_S:.0f} s")
    for page in ("runs_page", "overlay"):
        for system in ("cnai", "mlflow"):
            if system not in results:
                continue
            r = results[system][page]
            met = "met" if r["median_ms"] < AIM_S * 1000 else "missed"
            note = " (network kept polling)" if r["polling"] else ""
            figures = f"{r['median_ms']:>11.0f}{r['min_ms']:>8.0f}{r['max_ms']:>8.0f}"
            print(f"{page:<22}{system:<8}{figures}  {met}{note}")
        if "cnai" in results and "mlflow" in results:
            ratio = results["mlflow"][page]["median_ms"] / results["cnai"][page]["median_ms"]
            print(f"{page:<22}ratio MLflow / cnai: {ratio:.1f}x")


def main() -> None:
    sys.path.insert(0, str(BENCH))
    from common.provenance import code

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=["cnai", "mlflow"])
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/dashboard.py", *sys.argv[1:]]),
        "code": code("src", "benchmarks/dashboard.py"),
        "data": {
            "runs": args.runs,
            "metrics": len(KEYS),
            "steps": args.steps,
            "overlay_runs": OVERLAY_RUNS,
        },
    }
    with tempfile.TemporaryDirectory(prefix="cnai-dashboard-bench-") as tmp:
        if args.only in (None, "cnai"):
            results["cnai"] = bench_cnai(args, Path(tmp))
        if args.only in (None, "mlflow"):
            results["mlflow"] = bench_mlflow(args, Path(tmp))
    report(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "seed-mlflow":
    seed_mlflow(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
elif __name__ == "__main__":
    main()
