"""Starting the servers a benchmark compares, pinned to one CPU, and stopping them for sure.

Each server runs in its own session (process group) so that stopping it stops everything
it started; :func:`stop` sends SIGTERM, waits, then SIGKILL. Only 127.0.0.1 and free
ports are used.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from cnai.core.config import load_config

BENCHMARKS = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """``cmd`` run under ``taskset -c cpu`` (taskset execs, so the pid stays the same)."""
    if cpu is None:
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


def can_pin(*cpus: int) -> bool:
    available = os.sched_getaffinity(0)
    return shutil.which("taskset") is not None and all(c in available for c in cpus)


@dataclass
class Server:
    """A server process under test and how to reach it."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(
    name: str,
    cmd: list[str],
    log_path: Path,
    env: dict[str, str],
    url: str,
    cwd: Path | None = None,
) -> Server:
    """Start ``cmd`` in its own session, output to ``log_path``."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(name, url, proc, log_path)


def wait_ready(server: Server, path: str, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll ``path`` until it answers 200; RuntimeError with the log's tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited during start:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + path, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s:\n{server.log_tail()}")


def start_peer(workdir: Path, cpu: int | None) -> Server:
    """The bare FastAPI + pydantic + SQLite peer (benchmarks/peers/bare_fastapi.py)."""
    port = free_port()
    script = BENCHMARKS / "peers" / "bare_fastapi.py"
    cmd = [sys.executable, str(script), "--db", str(workdir / "peer.db"), "--port", str(port)]
    server = spawn(
        "bare-fastapi",
        pinned(cmd, cpu),
        workdir / "peer.log",
        dict(os.environ),
        f"http://127.0.0.1:{port}",
    )
    try:
        wait_ready(server, "/healthz")
    except BaseException:
        stop(server)
        raise
    return server


def start_cnai(home: Path, cpu: int | None) -> Server:
    """`python -m cnai up` with CNAI_HOME=home; the admin token comes from its config."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "cnai", "up", "--port", str(port)]
    env = {**os.environ, "CNAI_HOME": str(home)}
    for var in ("CNAI_CONFIG", "CNAI_SERVER", "CNAI_TOKEN", "CNAI_CONTEXT", "CNAI_NAMESPACE"):
        env.pop(var, None)
    url = f"http://127.0.0.1:{port}"
    server = spawn("cnai", pinned(cmd, cpu), home / "bench-platform.log", env, url)
    try:
        wait_ready(server, "/readyz")
        server.token = load_config(home / "config.yaml").token
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: Server) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it has not gone."""
    proc = server.proc
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)
    except ProcessLookupError:
        proc.wait(timeout=STOP_TIMEOUT_S)
