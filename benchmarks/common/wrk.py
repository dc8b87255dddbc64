"""Load from wrk (Debian's ``wrk``): one run, and its summary parsed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from common.servers import pinned

WRK_TIMEOUT = "5s"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """requests/s, latency percentiles (ms), request count, non-2xx and socket errors."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    if rps is None or done is None:
        raise RuntimeError(f"wrk gave no summary:\n{output}")
    latency = {f"p{p}": _ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": float(rps.group(1)),
        "requests": int(done.group(1)),
        "latency_ms": {k: round(v, 3) for k, v in latency.items()},
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
        if errors
        else {},
    }


def wrk(url: str, script: Path, connections: int, seconds: float, cpu: int | None) -> str:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    cmd += ["--timeout", WRK_TIMEOUT, "-s", str(script), url]
    done = subprocess.run(pinned(cmd, cpu), capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout
