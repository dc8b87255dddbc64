"""What the serving gateway's hop costs: latency added at a fixed rate, CPU per request.

One ``cnai up`` serves an InferenceService (scikit-learn's LogisticRegression on iris,
one replica). Each measurement runs once straight to the replica's model server and once
through the gateway (``/serving/default/iris/...`` with the admin token), ``--rounds``
times:

1. **At a fixed rate** (open loop): a client in this process sends one-row v2 requests
   every 1/``--rate`` s for ``--duration`` s. Printed: p50 and p99 latency of each path
   and their difference (what the hop adds), and CPU per request: the platform's during
   a gateway run minus during a direct run of the same length (the controllers' ticks,
   which both include), and the replica's own (what the model server spends at the
   same rate, for scale: at a low rate every request pays each process's wake-up).
2. **Flat out** (closed loop): ``wrk`` with ``--concurrency`` connections for
   ``--wrk-duration`` s. Printed: requests/s, and the platform's and the replica's CPU
   per request.

No peer: KServe's and Knative's gateways (Istio, the activator) need Kubernetes. The
aims (issue 8): under 1 ms added at p50, under 150 CPU microseconds per request.

Run: ``.venv/bin/python benchmarks/serving_gateway.py [--rate 200] [--duration 15]
[--rounds 2] [--concurrency 4 16] [--wrk-duration 10]``. Needs wrk (apt-get install
wrk). Results: benchmarks/results/serving_gateway.json; docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import joblib  # type: ignore[import-untyped]
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cnai import Client
from common.cpu import process_cpu_s
from common.provenance import code
from common.servers import start_cnai, stop
from common.wrk import parse_wrk, wrk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "serving_gateway.json"
NAME = "iris"
BODY = {
    "inputs": [
        {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [[6.7, 3.0, 5.2, 2.3]]}
    ]
}
PATH = f"/v2/models/{NAME}/infer"


async def open_loop(url: str, headers: dict[str, str], rate: float, duration: float) -> list[float]:
    """Latencies (ms) of requests sent every 1/rate s for ``duration`` s, whatever the
    answers' pace (open loop: a slow answer does not delay the next request)."""
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:

        async def one() -> None:
            nonlocal failures
            t0 = time.perf_counter()
            answer = await client.post(url, json=BODY)
            if answer.status_code != 200:
                failures += 1
                return
            latencies.append((time.perf_counter() - t0) * 1000)

        tasks = []
        start = time.perf_counter()
        n = int(rate * duration)
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    if failures:
        raise RuntimeError(f"{failures} requests to {url} failed")
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--wrk-duration", type=float, default=10.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("this benchmark needs wrk: apt-get install -y wrk")
    home = Path(tempfile.mkdtemp(prefix="cnai-bench-gateway-"))
    iris = load_iris()
    joblib.dump(LogisticRegression(max_iter=1000).fit(iris.data, iris.target), home / "iris.joblib")
    server = start_cnai(home, None)
    runs: list[dict[str, Any]] = []
    try:
        with Client(config_path=home / "config.yaml") as client:
            direct, gateway, replica_pid = start_service(client, server.url, home)
            try:
                measure(args, server, direct, gateway, replica_pid, runs, home)
            finally:
                stop_service(client)  # its pod would outlive the platform
    finally:
        stop(server)
    summary = summarize(runs)
    print(json.dumps(summary, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": "python benchmarks/serving_gateway.py "
                f"--rate {args.rate:g} --duration {args.duration:g} --rounds {args.rounds} "
                f"--concurrency {' '.join(map(str, args.concurrency))} "
                f"--wrk-duration {args.wrk_duration:g}",
                "code": code(),
                "runs": runs,
                "summary": summary,
            },
            indent=1,
        )
    )


def measure(
    args: argparse.Namespace,
    server: Any,
    direct: str,
    gateway: str,
    replica_pid: int,
    runs: list[dict[str, Any]],
    home: Path,
) -> None:
    """Each round: both paths at the fixed rate, then flat out at each concurrency."""
    script = home / "infer.lua"
    # A JSON string is a Lua string literal too (the body holds "]]", which would end
    # a Lua long string).
    script.write_text(LUA.format(body=json.dumps(json.dumps(BODY)), token=server.token))
    asyncio.run(open_loop(gateway, server.headers, args.rate, 3))  # warm-up
    asyncio.run(open_loop(direct, {}, args.rate, 3))
    paths = (("direct", direct, {}), ("gateway", gateway, server.headers))
    for round_ in range(args.rounds):
        for path, url, headers in paths:
            cpu0 = process_cpu_s(server.proc.pid), process_cpu_s(replica_pid)
            latencies = asyncio.run(open_loop(url, headers, args.rate, args.duration))
            cpu = process_cpu_s(server.proc.pid), process_cpu_s(replica_pid)
            runs.append(
                {
                    "load": "rate",
                    "round": round_,
                    "path": path,
                    "requests": len(latencies),
                    "p50_ms": round(percentile(latencies, 0.5), 3),
                    "p99_ms": round(percentile(latencies, 0.99), 3),
                    "platform_cpu_s": round(cpu[0] - cpu0[0], 4),
                    "replica_cpu_s": round(cpu[1] - cpu0[1], 4),
                }
            )
            print(runs[-1], flush=True)
        for c in args.concurrency:
            for path, url, _ in paths:
                cpu0 = process_cpu_s(server.proc.pid), process_cpu_s(replica_pid)
                done = parse_wrk(wrk(url, script, c, args.wrk_duration, None))
                cpu = process_cpu_s(server.proc.pid), process_cpu_s(replica_pid)
                if done["non2xx"] or any(done["socket_errors"].values()):
                    raise RuntimeError(f"failed requests to {url}: {done}")
                runs.append(
                    {
                        "load": f"wrk c={c}",
                        "round": round_,
                        "path": path,
                        "requests": done["requests"],
                        "rps": done["rps"],
                        "p50_ms": done["latency_ms"].get("p50"),
                        "p99_ms": done["latency_ms"].get("p99"),
                        "platform_cpu_s": round(cpu[0] - cpu0[0], 4),
                        "replica_cpu_s": round(cpu[1] - cpu0[1], 4),
                    }
                )
                print(runs[-1], flush=True)


LUA = """-- Written by benchmarks/serving_gateway.py: POST the same v2 body on every request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.body = {body}
"""


def start_service(client: Client, platform_url: str, home: Path) -> tuple[str, str, int]:
    """Serve the model with one replica; (direct URL, gateway URL, the replica's pid)."""
    client.create(
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": NAME},
            "spec": {
                "predictor": {"model": str(home / "iris.joblib"), "format": "sklearn"},
                "minReplicas": 1,
                "maxReplicas": 1,
            },
        },
        "default",
    )
    deadline = time.monotonic() + 120
    while (client.get("inferenceservice", NAME, "default").status or {}).get("phase") != "Ready":
        if time.monotonic() > deadline:
            raise TimeoutError("the InferenceService did not become ready")
        time.sleep(0.5)
    pod = client.list(
        "pod", "default", label_selector=f"cnai.io/inferenceservice-name={NAME}"
    ).items[0]
    pid_file = home / "pods" / pod.metadata.uid / "child.pid"  # the local runtime's layout
    direct = f"http://127.0.0.1:{pod.metadata.annotations['cnai.io/port']}{PATH}"
    gateway = f"{platform_url}/serving/default/{NAME}{PATH}"
    return direct, gateway, int(pid_file.read_text())


def stop_service(client: Client) -> None:
    client.delete("inferenceservice", NAME, "default")
    deadline = time.monotonic() + 30
    selector = f"cnai.io/inferenceservice-name={NAME}"
    while (
        time.monotonic() < deadline and client.list("pod", "default", label_selector=selector).items
    ):
        time.sleep(0.2)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds, per load and path; the gateway's CPU per request net of the
    platform's during the direct run."""
    summary: dict[str, Any] = {}
    for load in dict.fromkeys(r["load"] for r in runs):

        def med(path: str, key: str, load: str = load) -> float:
            return statistics.median(
                r[key] for r in runs if r["load"] == load and r["path"] == path
            )

        pairs = zip(
            (r for r in runs if r["load"] == load and r["path"] == "direct"),
            (r for r in runs if r["load"] == load and r["path"] == "gateway"),
            strict=True,
        )
        gateway_us = statistics.median(
            (g["platform_cpu_s"] - d["platform_cpu_s"] * g["requests"] / d["requests"])
            / g["requests"]
            * 1e6
            if load != "rate"
            else (g["platform_cpu_s"] - d["platform_cpu_s"]) / g["requests"] * 1e6
            for d, g in pairs
        )
        row = {
            "direct_p50_ms": med("direct", "p50_ms"),
            "gateway_p50_ms": med("gateway", "p50_ms"),
            "direct_p99_ms": med("direct", "p99_ms"),
            "gateway_p99_ms": med("gateway", "p99_ms"),
            "added_p50_ms": round(med("gateway", "p50_ms") - med("direct", "p50_ms"), 3),
            "gateway_cpu_us_per_request": round(gateway_us, 1),
            "replica_cpu_us_per_request": round(
                statistics.median(
                    r["replica_cpu_s"] / r["requests"] * 1e6
                    for r in runs
                    if r["load"] == load and r["path"] == "direct"
                ),
                1,
            ),
        }
        if load != "rate":
            row |= {"direct_rps": med("direct", "rps"), "gateway_rps": med("gateway", "rps")}
        summary[load] = row
        print(
            f"{load}: p50 direct {row['direct_p50_ms']:.2f} ms, gateway "
            f"{row['gateway_p50_ms']:.2f} ms (added {row['added_p50_ms']:.2f} ms); gateway CPU "
            f"{row['gateway_cpu_us_per_request']:.0f} us a request (aim < 150 us: "
            f"{'met' if row['gateway_cpu_us_per_request'] < 150 else 'not met'}); the "
            f"replica's own {row['replica_cpu_us_per_request']:.0f} us"
            + (
                f"; {row['direct_rps']:.0f} rps direct, {row['gateway_rps']:.0f} through it"
                if load != "rate"
                else ""
            )
        )
    return summary


if __name__ == "__main__":
    main()
