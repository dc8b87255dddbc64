"""Model serving: cnai's model server beside KServe, MLServer and a bare FastAPI endpoint.

Every server serves the same model, a scikit-learn ``LogisticRegression`` fitted on the
iris data set that scikit-learn ships (``max_iter=1000``), saved once per run with joblib
and loaded by each server from that file. Each server runs in a virtual environment of
its own under ``benchmarks/.venvs/<env>`` (the peers' pins conflict), made on first use
and again when its requirements change: a peer's from
``benchmarks/serving_peers/<peer>.txt`` plus ``scikit-learn`` at the version of cnai's
development environment (so the same pickle loads everywhere); cnai's with what a pod
installs, the project's dependencies and its ``serving`` extra, at the versions of the
development environment (``pip freeze`` as constraints), and src/ on ``PYTHONPATH``.
Not the development environment itself: its MLflow brings pandas and pyarrow, which
scikit-learn imports when it finds them (about 60 MiB more resident memory) and a pod
does not have. The servers, one at a time, each pinned to one CPU (``--server-cpu``, 1)
with ``taskset``, answering on 127.0.0.1 only:

- ``fastapi``: benchmarks/serving_peers/fastapi_bare.py, one ``async def`` v2 endpoint
  (pydantic request model, ``np.asarray``, predict, dict answer) on uvicorn with uvloop
  and httptools, access log off: no metrics, no logging per request.
- ``kserve``: ``kserve.ModelServer`` 0.21.0 as its sklearnserver runs it
  (benchmarks/serving_peers/kserve_sklearn.py) with its defaults: one worker, gRPC on,
  KServe's logging configured (uvicorn's access log and a latency line per request on
  stdout, here into the server's log file), Prometheus metrics.
  KServe 0.21.0 needs Starlette 1.3.1 or later, so FastAPI 0.135 or later, which
  deprecates the ``ORJSONResponse`` that KServe answers with; scikit-learn's predict
  enters ``warnings.catch_warnings``, which resets Python's once-per-place record of
  warnings shown, so that warning goes to stderr on every request (as with any install
  of KServe 0.21.0 from PyPI).
- ``kserve-quiet``: the same, logging silenced: ``--configure_logging false`` (no
  handler is installed, so uvicorn's access log is off and KServe's timing lines are
  dropped at the level check), ``--enable_latency_logging false``, and
  ``PYTHONWARNINGS=ignore`` (no deprecation warning per request).
- ``mlserver``: ``mlserver start`` 1.7.1 with mlserver-sklearn and no settings beyond the
  ports and host (benchmarks/serving_peers/mlserver/default.json): one parallel worker
  (inference in a separate process), metrics on their own port, debug (the access log)
  on, gzip middleware on.
- ``mlserver-tuned``: ``parallel_workers: 0`` (inference in the server process),
  ``metrics_endpoint: null`` (no metrics middleware or server), ``debug: false`` (no
  access log), ``gzip_enabled: false`` (mlserver/tuned.json).
- ``cnai``: ``python -m cnai.serving.server --format sklearn`` with its defaults:
  Prometheus metrics on, logging at INFO (no access log, which cnai does not have).
- ``cnai-batch``: the same with ``--max-batch-size 32 --max-latency-ms 2``.

The platform's gateway is measured on its own by benchmarks/serving_gateway.py: on 2
cores a load generator, a gateway and a server cannot each have a core, so it reports
the latency the hop adds and the CPU it spends per request rather than a throughput.

Load: every request is the same single-row v2 body (:data:`BODY`, ``FP64``: each server
takes it as it is). ``wrk --latency`` (one thread, pinned to ``--client-cpu``, 0) POSTs
it over keep-alive connections: first ``--warmup`` seconds at the first concurrency,
not measured, then ``--duration`` seconds at each of ``--concurrency``. Before the load
one request's answer is checked (status 200 and the prediction this process computes);
after each measurement wrk's ``Non-2xx or 3xx responses`` and socket errors are
recorded, and a run with any is marked. Per measurement: requests/s, latency p50 and p99
(wrk's), the server's CPU seconds (its whole process group: MLServer's worker too) and
how busy its CPU was with other processes over the same window. After the load: the
resident memory of the server's process group (RSS summed, and PSS, which counts pages
shared between a parent and its forked workers once). With ``--rounds N`` every server
is measured N times, round-robin, and the table shows medians.

It prints rps, p50 and p99 per concurrency and memory per server, the ratio of cnai's
rps to KServe's best configuration, and the aims (at least 2.5x KServe's best with
metrics and logging on; p99 at c=64 under 15 ms; under 200 MiB per replica), and writes
benchmarks/results/serving.json with the date, command, commit, machine, load averages
and package versions of each environment. Results: docs/benchmarks.md.

Run: ``.venv/bin/python benchmarks/serving.py`` (``--servers a,b``, ``--duration S``,
``--concurrency 16,64``, ``--warmup S``, ``--rounds N``, ``--cnai-src DIR`` to measure
another checkout's src/, ``--setup-only`` to make the environments and stop). The first
run makes the environments (a few minutes); after that the 7 servers take about
4.5 minutes a round at the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from common.cpu import cpu_busy_s, process_cpu_s
from common.provenance import code
from common.servers import Server, can_pin, free_port, pinned, spawn, stop, wait_ready
from common.wrk import WRK_TIMEOUT, parse_wrk, wrk

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
PEERS = BENCH / "serving_peers"
VENVS = BENCH / ".venvs"
RESULTS = BENCH / "results" / "serving.json"

MODEL = "iris"  # keep in sync with serving_peers/mlserver/model-settings.json
ROW = [6.7, 3.0, 5.2, 2.3]  # an iris virginica: class 2
BODY = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]},
    separators=(",", ":"),
)
READY_PATH = "/v2/health/ready"
READY_TIMEOUT_S = 180.0  # KServe imports a great deal; MLServer starts a worker process
AIM_RATIO = 2.5  # cnai's rps over KServe's best configuration's
AIM_P99_MS = 15.0  # at c=64
AIM_RSS_MIB = 200.0

# What each environment reports in the results: its packages' versions.
PACKAGES = {
    "cnai": ["uvicorn", "uvloop", "httptools", "pydantic-core", "prometheus-client"],
    "fastapi": ["fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic"],
    "kserve": ["kserve", "fastapi", "uvicorn", "uvloop", "orjson", "pydantic"],
    "mlserver": ["mlserver", "mlserver-sklearn", "fastapi", "uvicorn", "uvloop", "pydantic"],
}
COMMON_PACKAGES = ["scikit-learn", "numpy"]


@dataclass(frozen=True)
class Config:
    """One row of the table: which environment runs what."""

    name: str
    env: str  # its environment, benchmarks/.venvs/<env>
    what: str


CONFIGS = {
    c.name: c
    for c in (
        Config("fastapi", "fastapi", "bare FastAPI + uvicorn endpoint, no metrics or logging"),
        Config("kserve", "kserve", "KServe ModelServer, defaults (logging on)"),
        Config("kserve-quiet", "kserve", "KServe ModelServer, logging silenced"),
        Config("mlserver", "mlserver", "MLServer, defaults (1 parallel worker, metrics)"),
        Config("mlserver-tuned", "mlserver", "MLServer, workers 0, no metrics, no debug, no gzip"),
        Config("cnai", "cnai", "cnai model server, defaults (metrics and logging on)"),
        Config("cnai-batch", "cnai", "cnai model server, batching: 32 rows, 2 ms"),
    )
}
KSERVE_CONFIGS = ("kserve", "kserve-quiet")


# ------------------------------------------------------------------------ environments


def requirements(env: str) -> tuple[str, str]:
    """(requirements, constraints) of an environment. A peer's: its file plus cnai's
    scikit-learn. cnai's: what a pod installs, the project's dependencies and its
    ``serving`` extra (not cnai itself: the server runs from src/), constrained to the
    versions of the development environment, so both have the same uvicorn and numpy."""
    import sklearn  # type: ignore[import-untyped]

    pin = f"scikit-learn=={sklearn.__version__}\n"
    if env != "cnai":
        return (PEERS / f"{env}.txt").read_text() + pin, ""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["serving"]]
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "\n".join(wanted) + "\n" + pin, frozen


def python_of(env: str) -> Path:
    return VENVS / env / "bin" / "python"


def ensure_env(env: str) -> None:
    """Make ``benchmarks/.venvs/<env>`` unless it exists with the same requirements."""
    home = VENVS / env
    stamp = home / "bench-pins.txt"
    wanted, constraints = requirements(env)
    if stamp.is_file() and stamp.read_text() == wanted + constraints and python_of(env).exists():
        return
    print(f"making the {env} environment in {home.relative_to(ROOT)} ...", flush=True)
    shutil.rmtree(home, ignore_errors=True)
    # The interpreter cnai's environment was made from, so every server runs one Python.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(home)], check=True)
    (home / "requirements.txt").write_text(wanted)
    (home / "constraints.txt").write_text(constraints)
    pip = [str(python_of(env)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["-r", str(home / "requirements.txt"), "-c", str(home / "constraints.txt")]
    subprocess.run(pip, check=True)
    stamp.write_text(wanted + constraints)


def versions(env: str) -> dict[str, str]:
    """Package versions in ``env``, read by its own interpreter."""
    names = PACKAGES[env] + COMMON_PACKAGES
    code = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [str(python_of(env)), "-c", code, *names], capture_output=True, text=True, check=True
    )
    out: dict[str, str] = json.loads(done.stdout)
    out["python"] = platform.python_version()
    return out


# ------------------------------------------------------------------------------- model


def save_model(workdir: Path) -> tuple[Path, int]:
    """Fit the model, save it as ``workdir/model/model.joblib``; its prediction of ROW."""
    import joblib  # type: ignore[import-untyped]
    from sklearn.datasets import load_iris  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    folder = workdir / "model"
    folder.mkdir(parents=True)
    joblib.dump(model, folder / "model.joblib")
    return folder / "model.joblib", int(model.predict([ROW])[0])


# ----------------------------------------------------------------------------- servers


def command(config: Config, workdir: Path, model: Path, port: int) -> list[str]:
    """The server's command line; peers' settings files are written here."""
    python = str(python_of(config.env))
    if config.env == "cnai":
        cmd = [python, "-m", "cnai.serving.server", "--name", MODEL, "--model", str(model)]
        cmd += ["--format", "sklearn", "--port", str(port)]
        if config.name == "cnai-batch":
            cmd += ["--max-batch-size", "32", "--max-latency-ms", "2"]
        return cmd
    if config.env == "fastapi":
        script = PEERS / "fastapi_bare.py"
        return [python, str(script), "--name", MODEL, "--model", str(model), "--port", str(port)]
    if config.env == "kserve":
        cmd = [python, str(PEERS / "kserve_sklearn.py"), "--model_name", MODEL]
        cmd += ["--model_dir", str(model.parent), "--http_port", str(port)]
        cmd += ["--grpc_port", str(free_port())]
        if config.name == "kserve-quiet":
            cmd += ["--configure_logging", "false", "--enable_latency_logging", "false"]
        return cmd
    return [
        str(VENVS / "mlserver" / "bin" / "mlserver"),
        "start",
        str(mlserver_dir(config, workdir, model, port)),
    ]


def mlserver_dir(config: Config, workdir: Path, model: Path, port: int) -> Path:
    """A model repository: settings.json (the template plus ports), iris/ with the model."""
    variant = "tuned" if config.name == "mlserver-tuned" else "default"
    settings = json.loads((PEERS / "mlserver" / f"{variant}.json").read_text())
    settings |= {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
    root = workdir / config.name
    shutil.rmtree(root, ignore_errors=True)  # the last round's
    (root / MODEL).mkdir(parents=True)
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    shutil.copy(PEERS / "mlserver" / "model-settings.json", root / MODEL)
    shutil.copy(model, root / MODEL / "model.joblib")
    return root


def start(
    config: Config, workdir: Path, model: Path, cpu: int | None, cnai_src: Path
) -> tuple[Server, float]:
    """Start the server pinned to ``cpu``; (server, seconds until it answered ready)."""
    port = free_port()
    cmd = command(config, workdir, model, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CNAI_", "MLSERVER_"))}
    env["PYTHONUNBUFFERED"] = "1"
    if config.name == "kserve-quiet":
        env["PYTHONWARNINGS"] = "ignore"
    if config.env == "cnai":
        env["PYTHONPATH"] = str(cnai_src)  # the working tree, unless told otherwise
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"{config.name}.log"
    started = time.perf_counter()
    server = spawn(config.name, pinned(cmd, cpu), log, env, url, cwd=workdir)
    try:
        wait_ready(server, READY_PATH, READY_TIMEOUT_S)
    except BaseException:
        stop(server)
        raise
    return server, time.perf_counter() - started


def spot_check(server: Server, expected: int) -> dict[str, Any]:
    """One request: status 200 and the prediction ``expected`` in the first output."""
    resp = httpx.post(
        f"{server.url}/v2/models/{MODEL}/infer",
        content=BODY,
        headers={"content-type": "application/json"},
        timeout=10.0,
    )
    answer = (
        resp.json() if resp.headers.get("content-type", "").startswith("application/json") else None
    )
    data = answer["outputs"][0]["data"] if resp.status_code == 200 and answer else None
    ok = resp.status_code == 200 and data is not None and list(data) == [expected]
    return {"ok": ok, "status": resp.status_code, "answer": answer if answer else resp.text[:300]}


# ------------------------------------------------------------------ process accounting


def group_pids(pgid: int) -> list[int]:
    """Every live process of the process group (a server and what it started)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def group_cpu_s(pgid: int) -> float:
    total = 0.0
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):  # it ended meanwhile
            total += process_cpu_s(pid)
    return total


def _kib(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_memory_mib(pgid: int) -> dict[str, Any]:
    """RSS summed over the group, PSS summed (shared pages counted once), processes."""
    pids = group_pids(pgid)
    rss = sum(_kib(f"/proc/{pid}/status", "VmRSS:") for pid in pids)
    pss = sum(_kib(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in pids)
    return {
        "rss_mib": round(rss / 1024, 1),
        "pss_mib": round(pss / 1024, 1),
        "processes": len(pids),
    }


# -------------------------------------------------------------------------------- load

LUA = """-- Written by benchmarks/serving.py: POST the same v2 body on every request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""


def measure(server: Server, script: Path, c: int, args: argparse.Namespace) -> dict[str, Any]:
    """One wrk run at concurrency ``c``, with the server's CPU over the same window."""
    pgid = server.proc.pid
    url = f"{server.url}/v2/models/{MODEL}/infer"
    wall0, cpu0, busy0 = time.perf_counter(), group_cpu_s(pgid), cpu_busy_s(args.server_cpu)
    output = wrk(url, script, c, args.duration, args.client_cpu)
    result = parse_wrk(output)
    wall = time.perf_counter() - wall0
    server_cpu = group_cpu_s(pgid) - cpu0
    others = max(0.0, cpu_busy_s(args.server_cpu) - busy0 - server_cpu)
    result |= {
        "server_cpu_share": round(server_cpu / wall, 3),
        "other_on_server_cpu_share": round(others / wall, 3),
        "rps_per_server_cpu_s": round(result["requests"] / server_cpu, 1) if server_cpu else 0,
        "wrk_output": output.splitlines(),
    }
    return result


def bench_server(
    config: Config, workdir: Path, model: Path, expected: int, args: argparse.Namespace
) -> dict[str, Any]:
    script = workdir / "infer.lua"
    server, ready_s = start(config, workdir, model, args.server_cpu, args.cnai_src)
    try:
        check = spot_check(server, expected)
        idle = group_memory_mib(server.proc.pid)
        if not check["ok"]:
            print(f"  {config.name}: spot check FAILED: {check}", flush=True)
        url = f"{server.url}/v2/models/{MODEL}/infer"
        if args.warmup > 0:
            wrk(url, script, args.concurrency[0], args.warmup, args.client_cpu)
        runs = {str(c): measure(server, script, c, args) for c in args.concurrency}
        memory = group_memory_mib(server.proc.pid)
    finally:
        stop(server)
    out = {"ready_s": round(ready_s, 2), "spot_check": check, "memory_idle": idle}
    out |= {"memory": memory, "runs": runs}
    cells = ", ".join(
        f"c={c} {r['rps']:,.0f} rps p99 {r['latency_ms'].get('p99', 0):.2f} ms "
        f"(cpu {r['server_cpu_share']:.2f}, others {r['other_on_server_cpu_share']:.2f})"
        for c, r in runs.items()
    )
    print(f"  {config.name}: {cells}, RSS {memory['rss_mib']:.0f} MiB", flush=True)
    return out


# ---------------------------------------------------------------------------- summary


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def summarize(rounds: dict[str, list[dict[str, Any]]], concurrency: list[int]) -> dict[str, Any]:
    """Per server: the medians over rounds of rps, p50, p99 per concurrency, and memory."""
    out: dict[str, Any] = {}
    for name, tried in rounds.items():
        results = [r for r in tried if "error" not in r]
        if not results:
            continue
        row: dict[str, Any] = {
            "measured_rounds": len(results),
            "rss_mib": _median([r["memory"]["rss_mib"] for r in results]),
            "pss_mib": _median([r["memory"]["pss_mib"] for r in results]),
            "all_ok": len(results) == len(tried)
            and all(
                r["spot_check"]["ok"]
                and all(
                    m["non2xx"] == 0 and not any(m["socket_errors"].values())
                    for m in r["runs"].values()
                )
                for r in results
            ),
        }
        for c in map(str, concurrency):
            runs = [r["runs"][c] for r in results]
            row[c] = {
                "rps": _median([m["rps"] for m in runs]),
                "p50_ms": _median([m["latency_ms"]["p50"] for m in runs]),
                "p99_ms": _median([m["latency_ms"]["p99"] for m in runs]),
                "server_cpu_share": _median([m["server_cpu_share"] for m in runs]),
                "other_on_server_cpu_share": _median(
                    [m["other_on_server_cpu_share"] for m in runs]
                ),
            }
        out[name] = row
    return out


def aims(summary: dict[str, Any], concurrency: list[int]) -> dict[str, Any]:
    """cnai against KServe's best configuration, and the aims."""
    if "cnai" not in summary:
        return {}
    cnai = summary["cnai"]
    out: dict[str, Any] = {"rss_mib": cnai["rss_mib"], "rss_met": cnai["rss_mib"] < AIM_RSS_MIB}
    for c in map(str, concurrency):
        kserve = [summary[k][c]["rps"] for k in KSERVE_CONFIGS if k in summary]
        if kserve:
            ratio = cnai[c]["rps"] / max(kserve)
            out[f"ratio_c{c}"] = round(ratio, 2)
            out[f"ratio_c{c}_met"] = ratio >= AIM_RATIO
    if "64" in cnai:
        out["p99_c64_ms"] = cnai["64"]["p99_ms"]
        out["p99_c64_met"] = cnai["64"]["p99_ms"] < AIM_P99_MS
    return out


def report(r: dict[str, Any]) -> str:
    conc = r["settings"]["concurrency"]
    m = r["machine"]
    head = (
        f"{'server':<16}"
        + "".join(f"{'c=' + str(c) + ' rps':>13}{'p50 ms':>9}{'p99 ms':>9}" for c in conc)
        + f"{'RSS MiB':>9}{'PSS MiB':>9}  ok"
    )
    s = r["settings"]
    lines = [
        f"Model serving ({r['date']}; {m['cpus']} CPUs; server on CPU {s['server_cpu']}, "
        f"wrk on CPU {s['client_cpu']}; load average {m['loadavg_start']} -> "
        f"{m['loadavg_end']})",
        f"one-row v2 JSON, {r['settings']['duration']:g} s per concurrency after "
        f"{r['settings']['warmup']:g} s warm-up, {r['settings']['rounds']} round(s), medians",
        "",
        head,
    ]
    for name, row in r["summary"].items():
        cells = "".join(
            f"{row[str(c)]['rps']:>13,.0f}{row[str(c)]['p50_ms']:>9.2f}{row[str(c)]['p99_ms']:>9.2f}"
            for c in conc
        )
        others = max(row[str(c)]["other_on_server_cpu_share"] for c in conc)
        lines.append(
            f"{name:<16}{cells}{row['rss_mib']:>9.0f}{row['pss_mib']:>9.0f}{others:>8.0%}  "
            f"{'yes' if row['all_ok'] else 'NO'}"
        )
    lines.append(
        "others: the largest share of the server's CPU busy with anything but the server "
        "(other processes, interrupts, steal) during a measurement; ok: the answer checked, "
        "no non-2xx answers, no socket errors"
    )
    for name, tried in r["rounds"].items():
        errors = [t["error"] for t in tried if "error" in t]
        if errors:
            lines.append(f"{name}: failed in {len(errors)} of {len(tried)} rounds: {errors[0]}")
    a = r["aims"]
    if a:
        lines.append("")
        for c in map(str, conc):
            if f"ratio_c{c}" in a:
                met = "met" if a[f"ratio_c{c}_met"] else "NOT met"
                lines.append(
                    f"cnai / KServe's best, c={c}: {a[f'ratio_c{c}']:.2f}x "
                    f"(aim >= {AIM_RATIO}x: {met})"
                )
        if "p99_c64_ms" in a:
            met = "met" if a["p99_c64_met"] else "NOT met"
            lines.append(
                f"cnai p99 at c=64: {a['p99_c64_ms']:.2f} ms (aim < {AIM_P99_MS:g} ms: {met})"
            )
        met = "met" if a["rss_met"] else "NOT met"
        lines.append(f"cnai RSS: {a['rss_mib']:.0f} MiB (aim < {AIM_RSS_MIB:g} MiB: {met})")
    return "\n".join(lines)


# -------------------------------------------------------------------------------- main


def bench(args: argparse.Namespace) -> dict[str, Any]:
    configs = [CONFIGS[name] for name in args.servers]
    envs = sorted({c.env for c in configs})
    for env in envs:
        ensure_env(env)
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    rounds: dict[str, list[dict[str, Any]]] = {c.name: [] for c in configs}
    workdir = Path(tempfile.mkdtemp(prefix="cnai-bench-serving-"))
    try:
        model, expected = save_model(workdir)
        (workdir / "infer.lua").write_text(LUA.format(body=BODY))
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}", flush=True)
            for config in configs:
                try:
                    result = bench_server(config, workdir, model, expected, args)
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    # One server that does not start or answer costs its row, not the run.
                    print(f"  {config.name}: FAILED: {exc}", flush=True)
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                rounds[config.name].append(result)
    finally:
        if args.keep:
            print(f"server logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(rounds, args.concurrency)
    return {
        "benchmark": "serving",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/serving.py", *sys.argv[1:]]),
        "code": code("src", "benchmarks/serving_peers"),
        "settings": {
            "servers": args.servers,
            "configs": {c.name: c.what for c in configs},
            "concurrency": args.concurrency,
            "duration": args.duration,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "server_cpu": args.server_cpu,
            "client_cpu": args.client_cpu,
            "cnai_src": str(args.cnai_src),
            "wrk": "wrk -t1 --latency --timeout " + WRK_TIMEOUT,
            "body": BODY,
            "model": "sklearn LogisticRegression(max_iter=1000) on iris",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_start": loadavg_start,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "environments": {env: versions(env) for env in envs},
        },
        "summary": summary,
        "aims": aims(summary, args.concurrency),
        "rounds": rounds,
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--servers", default=",".join(CONFIGS), help="Comma-separated, of: " + ", ".join(CONFIGS)
    )
    p.add_argument("--duration", type=float, default=15.0, help="Seconds per concurrency.")
    p.add_argument("--concurrency", default="16,64", help="Comma-separated connection counts.")
    p.add_argument("--warmup", type=float, default=5.0, help="Unmeasured seconds first.")
    p.add_argument("--rounds", type=int, default=1, help="Times each server is measured.")
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--client-cpu", type=int, default=0)
    p.add_argument(
        "--cnai-src",
        type=Path,
        default=ROOT / "src",
        help="The src/ of the cnai to measure (another checkout's, to compare two commits).",
    )
    p.add_argument("--setup-only", action="store_true", help="Make the environments, stop.")
    p.add_argument("--keep", action="store_true", help="Keep the work dir (server logs).")
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args()
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in args.servers if s not in CONFIGS]
    if unknown:
        p.error(f"unknown servers {unknown}; choose from {', '.join(CONFIGS)}")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        p.error("this benchmark needs wrk: apt-get install -y wrk")
    if not can_pin(args.server_cpu, args.client_cpu) or args.server_cpu == args.client_cpu:
        print("cannot pin server and wrk to separate CPUs: running unpinned", flush=True)
        args.server_cpu = args.client_cpu = None
    return args


def main() -> int:
    args = parse_args()
    if args.setup_only:
        for env in sorted({CONFIGS[name].env for name in args.servers}):
            ensure_env(env)
        return 0
    result = bench(args)
    print()
    print(report(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
