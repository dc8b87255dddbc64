"""Builders and bounded waits for the local runtime's tests (real processes, no sleeps
that a result depends on: every wait polls for a condition, with a deadline)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from cnai.core.runtime import Observation, PodLaunch, ProcessState
from cnai.runtimes.local import LocalRuntime

WAIT_SECONDS = 20.0


def py(code: str) -> tuple[str, ...]:
    """A command running ``code`` with this interpreter."""
    return (sys.executable, "-c", textwrap.dedent(code))


def gate(go: Path) -> str:
    """Python lines that wait (at most 10 s) until the file ``go`` exists."""
    return (
        "import os, time\n"
        "for _ in range(1000):\n"
        f"    if os.path.exists({str(go)!r}): break\n"
        "    time.sleep(0.01)\n"
    )


class PodBuilder:
    """A PodLaunch, fluently: ``make_pod().python("print(1)").env(A="b").build()``."""

    def __init__(self, uid: str) -> None:
        self._pod = PodLaunch(uid=uid, namespace="default", name=f"pod-{uid[:8]}", command=())

    def command(self, *argv: str) -> PodBuilder:
        self._pod = replace(self._pod, command=tuple(argv))
        return self

    def python(self, code: str) -> PodBuilder:
        return self.command(*py(code))

    def shell(self, script: str) -> PodBuilder:
        return self.command("/bin/sh", "-c", script)

    def env(self, **values: str) -> PodBuilder:
        self._pod = replace(self._pod, env={**self._pod.env, **values})
        return self

    def workdir(self, path: Path | str) -> PodBuilder:
        self._pod = replace(self._pod, working_dir=str(path))
        return self

    def memory(self, limit_bytes: int) -> PodBuilder:
        self._pod = replace(self._pod, memory_limit_bytes=limit_bytes)
        return self

    def gpus(self, *indices: int) -> PodBuilder:
        self._pod = replace(self._pod, gpu_indices=indices)
        return self

    def build(self) -> PodLaunch:
        return self._pod


def make_pod(uid: str | None = None) -> PodBuilder:
    return PodBuilder(uid or uuid.uuid4().hex)


async def wait_for(done: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_exited(runtime: LocalRuntime, uid: str) -> Observation:
    deadline = time.monotonic() + WAIT_SECONDS
    while (seen := await runtime.observe(uid)).state is ProcessState.RUNNING:
        if time.monotonic() > deadline:
            pytest.fail(f"pod {uid} still running after {WAIT_SECONDS}s")
        await asyncio.sleep(0.02)
    return seen


async def read_logs(runtime: LocalRuntime, uid: str, *, follow: bool = False) -> bytes:
    chunks = [c async for c in runtime.logs(uid, follow=follow)]
    return b"".join(chunks)


def log_has(runtime: LocalRuntime, uid: str, text: str) -> Callable[[], bool]:
    log = runtime.root / uid / "output.log"
    return lambda: log.exists() and text in log.read_text()


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"
