"""Builders and probes for tests that run real pods: manifests, processes, runtime dirs.

Pods run ``sys.executable -c CODE MARKER``: the platform's environment is this one, and
the marker (a unique argument) lets a test find the pod's process in ``/proc`` to prove
that it runs, or that it is gone.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import unique, wait_until

from cnai import Client
from cnai.batch.api import JOB_UID_LABEL
from cnai.core.kinds import Event
from cnai.core.meta import Resource
from cnai.core.pods import Pod

API_VERSION = "cnai.io/v1alpha1"


# Waits for ``release`` to exist, then succeeds; on SIGTERM appends a line to ``term`` and
# exits 143. Fill in with ``HOLD.format(release=..., term=...)``.
HOLD = """
    import os, signal, sys, time
    release, term = {release!r}, {term!r}
    def stop(*_):
        open(term, "a").write("sigterm\\n")
        sys.exit(143)
    signal.signal(signal.SIGTERM, stop)
    while not os.path.exists(release):
        time.sleep(0.05)
"""


def marker() -> str:
    """A unique argument that tags one test's pod processes."""
    return f"cnai-test-marker-{uuid.uuid4().hex[:12]}"


def python(code: str, mark: str) -> list[str]:
    """The command running ``code`` (dedented) with ``mark`` as its argv[1]."""
    return [sys.executable, "-c", textwrap.dedent(code), mark]


class PodBuilder:
    """``PodBuilder("p", "ns").runs(code, mark).memory_limit("64Mi").build()``."""

    def __init__(self, name: str, namespace: str) -> None:
        self.name = name
        self.namespace = namespace
        self.spec: dict[str, Any] = {"terminationGracePeriodSeconds": 5}

    def runs(self, code: str, mark: str) -> PodBuilder:
        self.spec["command"] = python(code, mark)
        return self

    def memory_limit(self, quantity: str) -> PodBuilder:
        self.spec.setdefault("resources", {}).setdefault("limits", {})["memory"] = quantity
        return self

    def env_from_secret(self, var: str, secret: str, key: str) -> PodBuilder:
        ref = {"secretKeyRef": {"name": secret, "key": key}}
        self.spec.setdefault("env", []).append({"name": var, "valueFrom": ref})
        return self

    def build(self) -> dict[str, Any]:
        meta = {"name": self.name, "namespace": self.namespace}
        return {"apiVersion": API_VERSION, "kind": "Pod", "metadata": meta, "spec": self.spec}


class JobBuilder:
    """``JobBuilder("j", "ns").runs(code, mark).parallelism(2).completions(4).build()``."""

    def __init__(self, name: str, namespace: str) -> None:
        self.name = name
        self.namespace = namespace
        self.pod = PodBuilder(name, namespace)
        self.spec: dict[str, Any] = {}

    def runs(self, code: str, mark: str) -> JobBuilder:
        self.pod.runs(code, mark)
        return self

    def parallelism(self, n: int) -> JobBuilder:
        self.spec["parallelism"] = n
        return self

    def completions(self, n: int) -> JobBuilder:
        self.spec["completions"] = n
        return self

    def backoff_limit(self, n: int) -> JobBuilder:
        self.spec["backoffLimit"] = n
        return self

    def deadline(self, seconds: int) -> JobBuilder:
        self.spec["activeDeadlineSeconds"] = seconds
        return self

    def ttl(self, seconds: int) -> JobBuilder:
        self.spec["ttlSecondsAfterFinished"] = seconds
        return self

    def build(self) -> dict[str, Any]:
        meta = {"name": self.name, "namespace": self.namespace}
        spec = {**self.spec, "template": {"spec": self.pod.spec}}
        return {"apiVersion": API_VERSION, "kind": "Job", "metadata": meta, "spec": spec}


@contextlib.contextmanager
def cpu_queue(client: Client, namespace: str, prefix: str, cpu: str) -> Iterator[tuple[str, str]]:
    """A ClusterQueue of its own with ``cpu`` of the default flavor, and a LocalQueue in
    ``namespace`` pointing at it: (ClusterQueue, LocalQueue). The ClusterQueue is deleted
    at the end (the namespace's deletion takes the LocalQueue)."""
    from cnai.core.errors import NotFound
    from cnai.scheduling.api import ClusterQueue, ResourceFlavor

    def flavor_exists() -> bool:
        try:
            client.get(ResourceFlavor, "default")
        except NotFound:
            return False
        return True

    wait_until(flavor_exists, 30, "the default flavor")
    cq, lq = unique(prefix), unique("lq")
    resources = [{"name": "cpu", "nominalQuota": cpu}]
    group = {"coveredResources": ["cpu"], "flavors": [{"name": "default", "resources": resources}]}
    client.create(
        {
            "apiVersion": API_VERSION,
            "kind": "ClusterQueue",
            "metadata": {"name": cq},
            "spec": {"resourceGroups": [group]},
        }
    )
    client.create(
        {
            "apiVersion": API_VERSION,
            "kind": "LocalQueue",
            "metadata": {"name": lq, "namespace": namespace},
            "spec": {"clusterQueue": cq},
        }
    )
    try:
        yield cq, lq
    finally:
        with contextlib.suppress(NotFound):
            client.delete(ClusterQueue, cq)


# -- probes -------------------------------------------------------------------------


def processes_with(mark: str) -> list[int]:
    """Pids of live processes whose command line contains ``mark`` (zombies excluded)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
        if mark.encode() in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def job_pods(client: Client, job: Resource) -> list[Pod]:
    """The job's pods (by the uid label its controller sets), sorted by name."""
    pods = client.list(
        Pod, job.metadata.namespace, label_selector=f"{JOB_UID_LABEL}={job.metadata.uid}"
    )
    return sorted(pods.items, key=lambda p: p.metadata.name)


def event_reasons(client: Client, obj: Resource) -> set[str]:
    """The reasons of the Events recorded about ``obj``."""
    events = client.list(
        Event, obj.metadata.namespace, field_selector=f"involvedObject.uid={obj.metadata.uid}"
    )
    return {e.reason for e in events.items}


def pod_dir(home: Path, pod: Pod) -> Path:
    """The local runtime's directory of ``pod`` under the platform's home."""
    return home / "pods" / str(pod.metadata.uid)
