"""API throughput: cnai's create rate, full-list time and watch latency against a bare ceiling.

No peer API server can run on this machine (no kube-apiserver is installable), so the
ceiling cnai is compared with is a bare FastAPI + pydantic + SQLite (WAL) insert
endpoint (benchmarks/peers/bare_fastapi.py). Both run in this one run, one after the
other, each pinned to CPU 0 with ``taskset``; wrk and this script run on CPU 1.

1. Peer: 500 warm-up creates, then 10,000 creates from 32 concurrent connections (wrk),
   then the median time of 5 full lists.
2. cnai (``python -m cnai up``, auth, admission and watch fan-out on): the same creates
   with 4 watch streams open on the secrets of namespace default, the same lists, then
   the watch delivery latency: 1,000 creates at a steady 200/s, each timed from its send
   to its event's arrival on a watch.

It prints creates/s, latency p50/p99, the ratio cnai/peer, list times and watch p50/p99,
whether the aims are met (>= 2,500 creates/s; watch p99 < 50 ms), and writes
benchmarks/results/api_throughput.json.

Run: ``make bench`` or ``.venv/bin/python benchmarks/api_throughput.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from common.cpu import CpuWindow
from common.loadgen import CreateRun, run_creates
from common.servers import Server, can_pin, start_cnai, start_peer, stop
from common.watching import Fanout, LatencyProbe, current_resource_version

AIM_CREATES_PER_S = 2500.0
AIM_WATCH_P99_MS = 50.0
CNAI_SECRETS = "/apis/cnai.io/v1alpha1/namespaces/default/secrets"
PEER_SECRETS = "/secrets"
RESULTS = Path(__file__).resolve().parent / "results" / "api_throughput.json"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--creates", type=int, default=10_000, help="Measured creates per server.")
    p.add_argument("--warmup", type=int, default=500, help="Unmeasured creates first.")
    p.add_argument("--connections", type=int, default=32, help="Concurrent wrk connections.")
    p.add_argument("--watchers", type=int, default=4, help="Watch streams open on cnai.")
    p.add_argument("--list-runs", type=int, default=5, help="Full lists timed (median).")
    p.add_argument("--latency-events", type=int, default=1000, help="Watch latency samples.")
    p.add_argument("--latency-rate", type=float, default=200.0, help="Their creates per s.")
    p.add_argument(
        "--watch-timeout-seconds",
        type=int,
        default=None,
        help="Open every watch with this timeoutSeconds (client-go always sets one; "
        "cnai's client does not, nor does this benchmark by default).",
    )
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the servers are pinned to.")
    p.add_argument("--client-cpu", type=int, default=1, help="CPU wrk and this script use.")
    p.add_argument("--output", type=Path, default=RESULTS, help="Where the JSON goes.")
    return p.parse_args()


async def time_lists(server: Server, path: str, runs: int) -> dict[str, Any]:
    """Median wall time of ``runs`` full GET lists (response fully read, not parsed)."""
    times, body = [], b""
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as c:
        for _ in range(runs):
            start = time.perf_counter()
            resp = await c.get(path)
            body = await resp.aread()
            times.append(1000 * (time.perf_counter() - start))
            resp.raise_for_status()
    return {
        "items": len(json.loads(body)["items"]),
        "bytes": len(body),
        "median_ms": round(statistics.median(times), 1),
        "runs_ms": [round(t, 1) for t in times],
    }


async def creates(
    server: Server, path: str, args: argparse.Namespace, prefix: str, n: int
) -> dict[str, Any]:
    """``n`` creates with wrk, with the server's CPU use over the same window."""
    window = CpuWindow(server.proc.pid, args.server_cpu if args.pinned else None).start()
    run = await _wrk(server, path, args, prefix, n)
    return {**run.to_dict(), "cpu": window.end().to_dict(run.ok2xx)}


async def _wrk(
    server: Server, path: str, args: argparse.Namespace, prefix: str, n: int
) -> CreateRun:
    run = await run_creates(
        server.url + path,
        n,
        prefix,
        token=server.token,
        connections=args.connections,
        cpu=args.client_cpu if args.pinned else None,
    )
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.name} died during the creates:\n{server.log_tail()}")
    return run


async def bench_peer(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server = start_peer(workdir, args.server_cpu if args.pinned else None)
    try:
        await creates(server, PEER_SECRETS, args, "warm", args.warmup)
        run = await creates(server, PEER_SECRETS, args, "main", args.creates)
        lists = await time_lists(server, PEER_SECRETS, args.list_runs)
    finally:
        stop(server)
    return {"creates": run, "list": lists}


async def bench_cnai(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    server = start_cnai(home, args.server_cpu if args.pinned else None)
    async with AsyncExitStack() as stack:
        stack.callback(stop, server)
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=server.url,
                headers=server.headers,
                timeout=httpx.Timeout(30, read=None),
                limits=httpx.Limits(max_connections=args.watchers + 8),
            )
        )
        rv, before = await current_resource_version(client)
        fanout = Fanout.start(client, args.watchers, rv, args.watch_timeout_seconds)
        stack.push_async_callback(fanout.stop)
        await creates(server, CNAI_SECRETS, args, "warm", args.warmup)
        run = await creates(server, CNAI_SECRETS, args, "main", args.creates)
        created_at = time.perf_counter()
        at_end = [w.events for w in fanout.watchers]
        _, total = await current_resource_version(client)
        last = await fanout.settle(total - before, timeout=60)
        fanout_result = {
            "streams": args.watchers,
            "expected_events_each": total - before,
            "received_when_creates_ended": at_end,
            "received": fanout.summary(),
            "drain_after_creates_ms": round(max(0.0, 1000 * (last - created_at)), 1),
        }
        lists = await time_lists(server, CNAI_SECRETS, args.list_runs)
        probe = LatencyProbe(
            args.latency_events, args.latency_rate, timeout_seconds=args.watch_timeout_seconds
        )
        await probe.run(client, timeout=args.latency_events / args.latency_rate + 60)
    return {
        "creates": run,
        "fanout": fanout_result,
        "list": lists,
        "watch": probe.result(),
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    with tempfile.TemporaryDirectory(prefix="cnai-bench-") as tmp:
        peer = await bench_peer(args, Path(tmp))
        cnai = await bench_cnai(args, Path(tmp) / "cnai-home")
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    info["pinning"] = (
        f"servers on CPU {args.server_cpu}, wrk and client on CPU {args.client_cpu}"
        if args.pinned
        else "none (taskset or a second CPU is missing)"
    )
    ratio = cnai["creates"]["creates_per_s"] / peer["creates"]["creates_per_s"]
    ratio_cpu = (
        cnai["creates"]["cpu"]["creates_per_server_cpu_s"]
        / peer["creates"]["cpu"]["creates_per_server_cpu_s"]
    )
    watch_p99 = cnai["watch"].get("latency_ms", {}).get("p99", float("inf"))
    return {
        "benchmark": "api_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/api_throughput.py", *sys.argv[1:]]),
        "settings": {
            "creates": args.creates,
            "warmup": args.warmup,
            "connections": args.connections,
            "watchers": args.watchers,
            "list_runs": args.list_runs,
            "latency_events": args.latency_events,
            "latency_rate": args.latency_rate,
            "watch_timeout_seconds": args.watch_timeout_seconds,
        },
        "machine": info,
        "peer": peer,
        "cnai": cnai,
        "ratio_creates": round(ratio, 3),
        "ratio_creates_per_cpu_s": round(ratio_cpu, 3),
        "aims": {
            "creates_per_s": AIM_CREATES_PER_S,
            "creates_met": cnai["creates"]["creates_per_s"] >= AIM_CREATES_PER_S,
            "watch_p99_ms": AIM_WATCH_P99_MS,
            "watch_met": watch_p99 < AIM_WATCH_P99_MS,
        },
    }


def _row(cells: list[str]) -> str:
    return f"  {cells[0]:<34}{cells[1]:>16}{cells[2]:>16}"


def report(r: dict[str, Any]) -> str:
    peer, cnai = r["peer"], r["cnai"]
    pc, cc = peer["creates"], cnai["creates"]
    watch = cnai["watch"].get("latency_ms", {})
    lines = [
        f"API throughput ({r['date']}; {r['machine']['cpus']} CPUs; {r['machine']['pinning']}; "
        f"load average {r['machine']['loadavg_start']} -> {r['machine']['loadavg_end']})",
        f"{r['settings']['creates']} creates over {r['settings']['connections']} connections "
        f"(wrk), after {r['settings']['warmup']} warm-up creates",
        "",
        _row(["", "bare FastAPI", "cnai"]),
        _row(["creates/s", f"{pc['creates_per_s']:,.0f}", f"{cc['creates_per_s']:,.0f}"]),
        _row(["creates per server CPU-second", _per_cpu(pc), _per_cpu(cc)]),
        _row(["server / other CPU use on its CPU", _shares(pc), _shares(cc)]),
        _row(
            ["create latency p50 (ms)", f"{pc['latency_ms']['p50']}", f"{cc['latency_ms']['p50']}"]
        ),
        _row(
            ["create latency p99 (ms)", f"{pc['latency_ms']['p99']}", f"{cc['latency_ms']['p99']}"]
        ),
        _row(["non-2xx / socket errors", _errs(pc), _errs(cc)]),
        _row(
            [
                "full list, median (ms)",
                f"{peer['list']['median_ms']} ({peer['list']['items']})",
                f"{cnai['list']['median_ms']} ({cnai['list']['items']})",
            ]
        ),
        _row(["watch delivery p50 (ms)", "-", f"{watch.get('p50', 'n/a')}"]),
        _row(["watch delivery p99 (ms)", "-", f"{watch.get('p99', 'n/a')}"]),
        "",
        f"  ratio cnai/peer creates/s: {r['ratio_creates']:.2f} "
        f"(per server CPU-second: {r['ratio_creates_per_cpu_s']:.2f})",
        *fanout_lines(cnai["fanout"]),
        f"  watch latency: {cnai['watch']['received']}/{cnai['watch']['sent']} events at "
        f"{cnai['watch']['rate_per_s']}/s",
        f"  aim >= {r['aims']['creates_per_s']:,.0f} creates/s: "
        f"{'met' if r['aims']['creates_met'] else 'NOT met'}; aim watch p99 < "
        f"{r['aims']['watch_p99_ms']:.0f} ms: {'met' if r['aims']['watch_met'] else 'NOT met'}",
    ]
    for name, c in (("bare FastAPI", pc), ("cnai", cc)):
        if c["non2xx_samples"]:
            lines.append(f"  {name} non-2xx sample: {c['non2xx_samples'][0]}")
    return "\n".join(lines)


def fanout_lines(f: dict[str, Any]) -> list[str]:
    received = [w["events"] for w in f["received"]]
    expired = sum(w["expired"] for w in f["received"])
    broken = [w["error"] for w in f["received"] if w["error"]]
    lines = [
        f"  watch fan-out: {f['streams']} streams open during the creates; events received "
        f"{received} of {f['expected_events_each']} each ({f['received_when_creates_ended']} "
        f"when the creates ended); backlog drained {f['drain_after_creates_ms']} ms after them"
    ]
    if expired:
        lines.append(f"  WARNING: {expired} watch stream(s) were expired (410) by the server")
    lines += [f"  WARNING: watch stream failed: {e}" for e in broken]
    return lines


def _per_cpu(c: dict[str, Any]) -> str:
    return f"{c['cpu']['creates_per_server_cpu_s']:,.0f}"


def _shares(c: dict[str, Any]) -> str:
    return f"{c['cpu']['server_cpu_share']:.0%} / {c['cpu']['other_on_server_cpu_share']:.0%}"


def _errs(c: dict[str, Any]) -> str:
    return f"{c['non2xx']} / {sum(c['socket_errors'].values())}"


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print("this benchmark needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    args.pinned = can_pin(args.server_cpu, args.client_cpu) and args.server_cpu != args.client_cpu
    if args.pinned:
        os.sched_setaffinity(0, {args.client_cpu})
    result = asyncio.run(bench(args))
    print(report(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
