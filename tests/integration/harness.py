"""Starting a real platform (`python -m cnai up`) on a free loopback port for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from cnai import Client


def unique(prefix: str) -> str:
    """A DNS-1123 name no other test uses (the session platform is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningPlatform:
    """A platform subprocess and how to reach it."""

    home: Path
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.home / "config.yaml"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CNAI_HOME": str(self.home)}

    def client(self, **kw: object) -> Client:
        return Client(config_path=self.config_path, **kw)  # type: ignore[arg-type]

    def admin_token(self) -> str:
        with self.client() as c:
            token = c.config.token
        assert token
        return token

    def stop(self, sig: int = 15) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


def start_platform(
    home: Path,
    port: int | None = None,
    timeout: float = 60.0,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> RunningPlatform:
    """Start `cnai up` with CNAI_HOME=home (and ``extra_args``, and ``env`` on top of this
    process's environment); wait until /readyz answers."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "test-platform.log"
    env = {**os.environ, **(env or {}), "CNAI_HOME": str(home)}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cnai", "up", "--port", str(port), *extra_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    running = RunningPlatform(home, port, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"platform exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{running.url}/readyz", timeout=1).status_code == 200:
                return running
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"platform not ready after {timeout}s:\n{log_path.read_text()}")
