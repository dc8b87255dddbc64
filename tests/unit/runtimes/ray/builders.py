"""Builders and bounded waits for the Ray runtime's tests (a real local Ray cluster; every
wait polls for a condition, with a deadline)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cnai.core.runtime import Observation, PodLaunch, ProcessState
from cnai.runtimes.ray import RayRuntime

WAIT_SECONDS = 30.0


def py(code: str) -> tuple[str, ...]:
    """A command running ``code`` with this interpreter (the Ray workers' one too)."""
    return (sys.executable, "-c", textwrap.dedent(code))


class PodBuilder:
    """A PodLaunch with its Pod object: ``make_pod().shell("echo hi").cpu("1").build()``."""

    def __init__(self, uid: str) -> None:
        self._launch = PodLaunch(uid=uid, namespace="default", name=f"p-{uid[:8]}", command=())
        self._requests: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        self._annotations: dict[str, str] = {}
        self._node = ""

    def shell(self, script: str) -> PodBuilder:
        self._launch = replace(self._launch, command=("/bin/sh", "-c", script))
        return self

    def python(self, code: str) -> PodBuilder:
        self._launch = replace(self._launch, command=py(code))
        return self

    def env(self, **values: str) -> PodBuilder:
        self._launch = replace(self._launch, env={**self._launch.env, **values})
        return self

    def workdir(self, path: Path | str) -> PodBuilder:
        self._launch = replace(self._launch, working_dir=str(path))
        return self

    def cpu(self, quantity: str) -> PodBuilder:
        self._requests["cpu"] = quantity
        return self

    def custom(self, resource: str) -> PodBuilder:
        """Needs one unit of a custom Ray resource (to pin it to a node in a test)."""
        self._requests[resource] = "1"
        return self

    def node(self, name: str) -> PodBuilder:
        """Bound to the cnai Node ``name`` (``spec.nodeName``), as the scheduler binds."""
        self._node = name
        return self

    def gang(self, job: str, rank: int, size: int, strategy: str = "") -> PodBuilder:
        self._labels |= {
            "cnai.io/trainjob-uid": job,
            "cnai.io/gang-generation": "0",
            "cnai.io/node-rank": str(rank),
        }
        self._annotations["cnai.io/num-nodes"] = str(size)
        if strategy:
            self._annotations["cnai.io/placement-strategy"] = strategy
        return self

    def build(self) -> PodLaunch:
        pod: dict[str, Any] = {
            "metadata": {
                "name": self._launch.name,
                "uid": self._launch.uid,
                "labels": self._labels,
                "annotations": self._annotations,
            },
            "spec": {"resources": {"requests": dict(self._requests)}, "nodeName": self._node},
        }
        return replace(self._launch, pod=pod)


def make_pod(uid: str | None = None) -> PodBuilder:
    return PodBuilder(uid or uuid.uuid4().hex)


async def wait_state(
    runtime: RayRuntime, uid: str, *states: ProcessState, timeout: float = WAIT_SECONDS
) -> Observation:
    """The first observation in one of ``states``; fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (seen := await runtime.observe(uid)).state not in states:
        if time.monotonic() > deadline:
            pytest.fail(f"pod {uid}: {seen} after {timeout}s, wanted {states}")
        await asyncio.sleep(0.05)
    return seen


async def wait_exited(runtime: RayRuntime, uid: str) -> Observation:
    return await wait_state(runtime, uid, ProcessState.EXITED)


async def read_logs(
    runtime: RayRuntime, uid: str, *, follow: bool = False, offset: int = 0
) -> bytes:
    return b"".join([c async for c in runtime.logs(uid, follow=follow, offset=offset)])
