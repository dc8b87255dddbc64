"""The quickstart `make up` runs: apply examples/quickstart, run its Job, show the result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from cnai.core.client import Client
from cnai.core.errors import ApiError
from cnai.core.manifests import load_path

console = Console(stderr=True, highlight=False)
JOB_TIMEOUT_S = 180.0
_FINISHED = ("Succeeded", "Failed")


def run_quickstart(config_path: Path, directory: Path) -> bool:
    """Apply every manifest in ``directory``, wait for its Jobs, print a summary."""
    try:
        with Client(config_path=config_path) as client:
            docs = load_path(directory)
            console.print(f"quickstart: applying {len(docs)} objects from {directory}")
            for doc in docs:
                result = client.apply(doc)
                obj = result.object
                where = f" -n {obj.metadata.namespace}" if obj.metadata.namespace else ""
                console.print(f"  {obj.kind.lower()}/{obj.metadata.name}{where} {result.action}")
            ok = all(_await_job(client, doc) for doc in docs if doc.get("kind") == "Job")
    except ApiError as exc:
        console.print(f"[red]quickstart failed:[/red] {exc.message}")
        return False
    if not ok:
        console.print("[red]quickstart failed[/red]: a Job did not succeed (see above)")
        return False
    console.print(
        f"[green]quickstart succeeded[/green]: {len(docs)} objects applied, the Job ran to "
        "completion. Try `cnai get jobs,pods -n quickstart` and `cnai describe job -n quickstart`."
    )
    return True


def _await_job(client: Client, doc: dict[str, Any]) -> bool:
    meta = doc.get("metadata") or {}
    name, ns = str(meta["name"]), meta.get("namespace")
    console.print(f"quickstart: waiting for job/{name} to finish")
    deadline = time.monotonic() + JOB_TIMEOUT_S
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.get("job", name, ns).status or {}
        if status.get("phase") in _FINISHED:
            break
        time.sleep(0.2)
    else:
        console.print(f"  job/{name} did not finish within {JOB_TIMEOUT_S:.0f}s")
        return False
    _summarize(client, name, ns, status)
    return status.get("phase") == "Succeeded"


def _summarize(client: Client, name: str, ns: str | None, status: dict[str, Any]) -> None:
    console.print(
        f"  job/{name}: {status.get('phase')} "
        f"(succeeded {status.get('succeeded', 0)}, failed {status.get('failed', 0)})"
    )
    pods = client.list("pod", ns, label_selector=f"cnai.io/job-name={name}").items
    for pod in pods:
        pod_status = pod.status or {}
        output = b"".join(client.logs(pod.metadata.name, ns)).decode("utf-8", "replace")
        last = output.strip().splitlines()[-1] if output.strip() else "(no output)"
        console.print(
            f"  pod/{pod.metadata.name}: {pod_status.get('phase')}, "
            f"exit code {pod_status.get('exitCode')}: {last}"
        )
