"""Create load with wrk (benchmarks/wrk/create.lua): exactly N POSTs, then a JSON summary.

wrk runs pinned to the client CPU. The Lua script stops each wrk thread at its share of
N and prints ``WRK_STOPPED``; wrk's main thread would sleep out its ``-d`` anyway, so
this module interrupts it (SIGINT, after which wrk still prints its summary) once every
thread has stopped. The rate is timed inside the script, from the first request to the
last response.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from typing import Any

from common.servers import BENCHMARKS, pinned

CREATE_SCRIPT = BENCHMARKS / "wrk" / "create.lua"


@dataclass(frozen=True)
class CreateRun:
    """What one wrk run measured."""

    requests: int
    ok2xx: int
    non2xx: int
    socket_errors: dict[str, int]
    window_s: float
    latency_ms: dict[str, float]
    non2xx_samples: list[str]

    @property
    def rate(self) -> float:
        return self.ok2xx / self.window_s if self.window_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok2xx": self.ok2xx,
            "non2xx": self.non2xx,
            "socket_errors": self.socket_errors,
            "seconds": round(self.window_s, 3),
            "creates_per_s": round(self.rate, 1),
            "latency_ms": self.latency_ms,
            "non2xx_samples": self.non2xx_samples,
        }


def _parse(result: dict[str, Any]) -> CreateRun:
    lat = result["latency_us"]
    return CreateRun(
        requests=int(result["responses"]),
        ok2xx=int(result["ok2xx"]),
        non2xx=int(result["non2xx"]),
        socket_errors={k: int(v) for k, v in result["errors"].items() if k != "status"},
        window_s=result["window_us"] / 1e6,
        latency_ms={k: round(float(v) / 1000, 2) for k, v in lat.items()},
        non2xx_samples=list(result["non2xx_samples"]),
    )


async def run_creates(
    url: str,
    n: int,
    prefix: str,
    *,
    token: str | None = None,
    connections: int = 32,
    threads: int = 1,
    cpu: int | None = None,
    max_seconds: int = 300,
) -> CreateRun:
    """POST ``n`` unique Secrets to ``url`` over ``connections`` keep-alive connections."""
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max_seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(CREATE_SCRIPT),
        url,
        "--",
        str(n),
        str(threads),
        prefix,
        token or "",
    ]
    proc = await asyncio.create_subprocess_exec(
        *pinned(cmd, cpu), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        return await asyncio.wait_for(_collect(proc, threads), max_seconds + 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _collect(proc: asyncio.subprocess.Process, threads: int) -> CreateRun:
    assert proc.stdout is not None
    assert proc.stderr is not None
    stopped, result, output = 0, None, []
    async for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        output.append(line)
        if line == "WRK_STOPPED":
            stopped += 1
            if stopped == threads:
                proc.send_signal(signal.SIGINT)
        elif line.startswith("WRK_RESULT "):
            result = json.loads(line.removeprefix("WRK_RESULT "))
    err = (await proc.stderr.read()).decode(errors="replace")
    await proc.wait()
    if result is None:
        raise RuntimeError(
            f"wrk gave no result (exit {proc.returncode}):\n" + "\n".join(output) + err
        )
    return _parse(result)
