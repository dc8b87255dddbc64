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
JOB_TIMEOUT_S = 300.0
SERVE_TIMEOUT_S = 120.0
_FINISHED = ("Succeeded", "Failed")
_WAITED = {"Job": "job", "TrainJob": "trainjob"}


def run_quickstart(config_path: Path, directory: Path) -> bool:
    """Apply every manifest in ``directory``, wait for its Jobs, print a summary."""
    try:
        with Client(config_path=config_path) as client:
            docs = [_resolved(doc, directory) for doc in load_path(directory)]
            console.print(f"quickstart: applying {len(docs)} objects from {directory}")
            for doc in docs:
                result = client.apply(doc)
                obj = result.object
                where = f" -n {obj.metadata.namespace}" if obj.metadata.namespace else ""
                console.print(f"  {obj.kind.lower()}/{obj.metadata.name}{where} {result.action}")
            ok = all([_await_job(client, doc) for doc in docs if doc.get("kind") in _WAITED])
    except ApiError as exc:
        console.print(f"[red]quickstart failed:[/red] {exc.message}")
        return False
    if not ok:
        console.print("[red]quickstart failed[/red]: a job did not succeed (see above)")
        return False
    try:
        _track(config_path)
    except Exception as exc:  # the tracking step is reported, not hidden
        console.print(f"[red]quickstart failed:[/red] tracking: {exc}")
        return False
    services = [d for d in docs if d.get("kind") == "InferenceService"]
    try:
        for doc in services:
            _predict(config_path, doc)
    except Exception as exc:  # the serving step is reported, not hidden
        console.print(f"[red]quickstart failed:[/red] serving: {exc}")
        return False
    console.print(
        f"[green]quickstart succeeded[/green]: {len(docs)} objects applied, the Job and the "
        "TrainJob ran to completion, their runs were tracked and their models registered, "
        "and the digits model answered predictions. Try `cnai get jobs,trainjobs,pods -n "
        "quickstart`, `cnai runs list -n quickstart`, `cnai models show digits -n "
        "quickstart` and `cnai get inferenceservices -n quickstart`."
    )
    return True


def _predict(config_path: Path, doc: dict[str, Any]) -> None:
    """Wait for the InferenceService to be ready, then send it five test digits through
    the platform's gateway (Open Inference Protocol v2) and print what it predicts."""
    import httpx
    import numpy as np
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    from cnai.core.config import load_config

    meta = doc.get("metadata") or {}
    name, ns = str(meta["name"]), str(meta.get("namespace") or "default")
    console.print(f"quickstart: waiting for inferenceservice/{name} to be ready")
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    with Client(config_path=config_path) as client:
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = client.get("inferenceservice", name, ns).status or {}
            if status.get("phase") == "Ready":
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(
                f"inferenceservice/{name} not ready after {SERVE_TIMEOUT_S:.0f}s: "
                f"{status.get('reason')} {status.get('message')}"
            )
    digits = load_digits()
    rows, truth = digits.data[-5:], digits.target[-5:]
    body = {
        "inputs": [{"name": "pixels", "shape": [5, 64], "datatype": "FP32", "data": rows.tolist()}]
    }
    cfg = load_config(config_path)
    answer = httpx.post(
        f"{status['url']}/v2/models/{name}/infer",
        json=body,
        headers={"Authorization": f"Bearer {cfg.token}"},
        timeout=SERVE_TIMEOUT_S,
    )
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.status_code}: {answer.text}")
    logits = np.array(answer.json()["outputs"][0]["data"]).reshape(5, 10)
    predicted = logits.argmax(axis=1).tolist()
    console.print(
        f"  inferenceservice/{name}: predicted {predicted} for digits {truth.tolist()} "
        f"at {status['url']}"
    )


def _track(config_path: Path) -> None:
    """Log a small run with the SDK (a loss falling over 200 steps), and register its
    model with the alias ``champion``."""
    from cnai.core.config import load_config
    from cnai.tracking.sdk import Run, TrackingClient

    cfg = load_config(config_path)
    with TrackingClient(cfg.server, cfg.token, "quickstart") as tracking:
        created = tracking.create_run(name="primes-fit", group="quickstart", params={"lr": 0.1})
        run = Run(tracking, created["id"], spool_dir=config_path.parent / "spool")
        loss = 1.0
        for step in range(200):
            loss *= 0.98
            run.log_metrics({"loss": loss, "accuracy": 1 - loss / 2}, step=step)
        run.end()
        console.print(
            f"quickstart: tracked run {run.id} (200 steps, loss {loss:.3f}); "
            f"{run.acked_points} points acknowledged"
        )
    with Client(config_path=config_path) as client:
        ns = "quickstart"
        model = {"apiVersion": "cnai.io/v1alpha1", "kind": "Model"}
        client.apply({**model, "metadata": {"name": "primes", "namespace": ns}, "spec": {}})
        version = {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": "primes-v1", "namespace": ns},
            "spec": {
                "model": "primes",
                "version": 1,
                "source": f"{created['artifactUri']}/model",
                "runId": run.id,
                "metrics": {"loss": loss},
            },
        }
        client.apply(version)
        client.apply(
            {
                **model,
                "metadata": {"name": "primes", "namespace": ns},
                "spec": {"aliases": {"champion": 1}},
            }
        )
        console.print("quickstart: registered model primes version 1 as models:/primes@champion")


def _resolved(doc: dict[str, Any], directory: Path) -> dict[str, Any]:
    """A TrainJob's relative workingDir, resolved against the repository (the directory
    above ``examples/``), so the quickstart runs wherever it is cloned."""
    trainer = (doc.get("spec") or {}).get("trainer") if doc.get("kind") == "TrainJob" else None
    if isinstance(trainer, dict):
        where = Path(str(trainer.get("workingDir") or "."))
        if not where.is_absolute():
            repo = directory.resolve().parent.parent
            trainer["workingDir"] = str((repo / where).resolve())
    return doc


def _await_job(client: Client, doc: dict[str, Any]) -> bool:
    kind = _WAITED[str(doc["kind"])]
    meta = doc.get("metadata") or {}
    name, ns = str(meta["name"]), meta.get("namespace")
    console.print(f"quickstart: waiting for {kind}/{name} to finish")
    deadline = time.monotonic() + JOB_TIMEOUT_S
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.get(kind, name, ns).status or {}
        if status.get("phase") in _FINISHED:
            break
        time.sleep(0.2)
    else:
        console.print(f"  {kind}/{name} did not finish within {JOB_TIMEOUT_S:.0f}s")
        return False
    _summarize(client, kind, name, ns, status)
    return status.get("phase") == "Succeeded"


def _summarize(
    client: Client, kind: str, name: str, ns: str | None, status: dict[str, Any]
) -> None:
    if kind == "trainjob":
        console.print(
            f"  trainjob/{name}: {status.get('phase')} on {status.get('numNodes')} nodes "
            f"(restarts {status.get('restarts', 0)}), run {status.get('runId')}"
        )
        selector = f"cnai.io/trainjob-name={name}"
    else:
        console.print(
            f"  job/{name}: {status.get('phase')} "
            f"(succeeded {status.get('succeeded', 0)}, failed {status.get('failed', 0)})"
        )
        selector = f"cnai.io/job-name={name}"
    pods = client.list("pod", ns, label_selector=selector).items
    for pod in pods:
        pod_status = pod.status or {}
        output = b"".join(client.logs(pod.metadata.name, ns)).decode("utf-8", "replace")
        last = output.strip().splitlines()[-1] if output.strip() else "(no output)"
        console.print(
            f"  pod/{pod.metadata.name}: {pod_status.get('phase')}, "
            f"exit code {pod_status.get('exitCode')}: {last}"
        )
