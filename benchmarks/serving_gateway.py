"""What the serving gateway's hop costs: latency added at a fixed rate, CPU per request.

One ``cnai up`` serves an InferenceService (scikit-learn's LogisticRegression on iris,
one replica). An open-loop client in this process sends one-row v2 requests at a fixed
rate (``--rate``, default 200/s) for ``--duration`` seconds, alternately straight to the
replica's model server and through the gateway (``/serving/default/iris/...`` with the
admin token), ``--rounds`` times each. Printed: p50 and p99 latency of each path and
their difference (what the hop adds), and the platform process's CPU per request: its
CPU time during a gateway run minus its CPU time during a direct run of the same length
(the controllers' ticks, which both include), over the requests sent.

No peer: KServe's and Knative's gateways (Istio, the activator) need Kubernetes. The
aims (issue 8): under 1 ms added at p50, under 150 CPU microseconds per request.

Run: ``.venv/bin/python benchmarks/serving_gateway.py [--rate 200] [--duration 15]
[--rounds 2]``. Results: benchmarks/results/serving_gateway.json; docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cnai-bench-gateway-"))
    iris = load_iris()
    joblib.dump(LogisticRegression(max_iter=1000).fit(iris.data, iris.target), home / "iris.joblib")
    server = start_cnai(home, None)
    runs: list[dict[str, Any]] = []
    try:
        with Client(config_path=home / "config.yaml") as client:
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
            while (client.get("inferenceservice", NAME, "default").status or {}).get(
                "phase"
            ) != "Ready":
                if time.monotonic() > deadline:
                    raise TimeoutError("the InferenceService did not become ready")
                time.sleep(0.5)
            pod = client.list(
                "pod", "default", label_selector=f"cnai.io/inferenceservice-name={NAME}"
            ).items[0]
            direct = f"http://127.0.0.1:{pod.metadata.annotations['cnai.io/port']}{PATH}"
            gateway = f"{server.url}/serving/default/{NAME}{PATH}"
            asyncio.run(open_loop(gateway, server.headers, args.rate, 3))  # warm-up
            asyncio.run(open_loop(direct, {}, args.rate, 3))
            for round_ in range(args.rounds):
                for path, url, headers in (
                    ("direct", direct, {}),
                    ("gateway", gateway, server.headers),
                ):
                    cpu0 = process_cpu_s(server.proc.pid)
                    latencies = asyncio.run(open_loop(url, headers, args.rate, args.duration))
                    cpu = process_cpu_s(server.proc.pid) - cpu0
                    runs.append(
                        {
                            "round": round_,
                            "path": path,
                            "requests": len(latencies),
                            "p50_ms": round(percentile(latencies, 0.5), 3),
                            "p99_ms": round(percentile(latencies, 0.99), 3),
                            "platform_cpu_s": round(cpu, 4),
                        }
                    )
                    print(runs[-1], flush=True)
            client.delete("inferenceservice", NAME, "default")
            deadline = time.monotonic() + 30
            while (
                time.monotonic() < deadline
                and client.list(
                    "pod", "default", label_selector=f"cnai.io/inferenceservice-name={NAME}"
                ).items
            ):
                time.sleep(0.2)
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
                f"--rate {args.rate:g} --duration {args.duration:g} --rounds {args.rounds}",
                "code": code(),
                "runs": runs,
                "summary": summary,
            },
            indent=1,
        )
    )


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(path: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["path"] == path)

    added_cpu = [
        (g["platform_cpu_s"] - d["platform_cpu_s"]) / g["requests"] * 1e6
        for d, g in zip(
            (r for r in runs if r["path"] == "direct"),
            (r for r in runs if r["path"] == "gateway"),
            strict=True,
        )
    ]
    added_p50 = med("gateway", "p50_ms") - med("direct", "p50_ms")
    cpu_us = statistics.median(added_cpu)
    print(
        f"\ndirect p50 {med('direct', 'p50_ms'):.2f} ms p99 {med('direct', 'p99_ms'):.2f} ms; "
        f"gateway p50 {med('gateway', 'p50_ms'):.2f} ms p99 {med('gateway', 'p99_ms'):.2f} ms\n"
        f"added at p50: {added_p50:.2f} ms (aim < 1 ms: {'met' if added_p50 < 1 else 'not met'}); "
        f"platform CPU per request: {cpu_us:.0f} us "
        f"(aim < 150 us: {'met' if cpu_us < 150 else 'not met'})"
    )
    return {"added_p50_ms": round(added_p50, 3), "cpu_us_per_request": round(cpu_us, 1)}


if __name__ == "__main__":
    main()
