"""Builders and golden files for the Kubernetes engine's tests.

The cnai Pods rendered here come from the quickstart's own manifests through the real
builders (the Job's, the TrainJob gang's, the InferenceService controller's), so a
change to what a job kind puts in its pods shows up in the goldens.

Golden files live in ``golden/`` as YAML; ``CNAI_UPDATE_GOLDEN=1`` rewrites them,
otherwise a test fails on the first difference.
"""

from __future__ import annotations

import copy
import os
import uuid
from pathlib import Path
from typing import Any, Self, cast

import kubernetes_validate
import yaml

from cnai.batch.api import Job
from cnai.batch.pods import build_pod as job_pod
from cnai.scheduling.api import PodPlacement
from cnai.serving.api import InferenceService, RevisionStatus
from cnai.serving.controller import PORT_ANNOTATION, InferenceServiceReconciler
from cnai.training.api import TrainJob
from cnai.training.gang import Node
from cnai.training.gang import build_pod as gang_pod

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[4]
EXAMPLES = ROOT / "examples" / "quickstart"
GOLDEN = Path(__file__).resolve().parent / "golden"
K8S_VERSION = "1.37.0"
IMAGE = "ghcr.io/cnai-dev/quickstart:0.1.0"
NODE = "kubernetes"  # the runtime's one node: the whole cluster
PORT = 29500
REPLICA_PORT = 40100  # the replicas' first port (the controller takes a free one)
FILES = {
    "Job": "20-job.yaml",
    "TrainJob": "30-trainjob.yaml",
    "InferenceService": "40-inferenceservice.yaml",
}


def uid_of(name: str) -> str:
    """A stable uid per name, so goldens do not change from run to run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cnai-test/{name}"))


class Example:
    """A quickstart manifest, adjusted, and the cnai Pods its controller would create:
    ``example("TrainJob").image(IMAGE).gpus("1").pods()``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.obj: Obj = yaml.safe_load((EXAMPLES / FILES[kind]).read_text())
        self.obj["metadata"]["uid"] = uid_of(f"{kind}/{self.obj['metadata']['name']}")

    @property
    def _pod_spec(self) -> Obj:
        spec: Obj = self.obj["spec"]
        if self.kind == "Job":
            return cast(Obj, spec["template"]["spec"])
        if self.kind == "TrainJob":
            return cast(Obj, spec["trainer"])
        return cast(Obj, spec["predictor"])

    def image(self, image: str = IMAGE) -> Self:
        self._pod_spec["image"] = image
        return self

    def working_dir(self, path: str) -> Self:
        self._pod_spec["workingDir"] = path
        return self

    def gpus(self, amount: str, *, limits: str | None = None) -> Self:
        key = "resourcesPerNode" if self.kind == "TrainJob" else "resources"
        resources = self._pod_spec.setdefault(key, {})
        resources.setdefault("requests", {})["gpu"] = amount
        if limits is not None:
            resources.setdefault("limits", {})["gpu"] = limits
        return self

    def num_proc_per_node(self, n: int) -> Self:
        self._pod_spec["numProcPerNode"] = n
        return self

    def pods(self) -> list[Obj]:
        """The cnai Pods, as dicts the store would hold (each with its own uid)."""
        built = {
            "Job": self._job_pods,
            "TrainJob": self._gang_pods,
            "InferenceService": self._replica_pods,
        }[self.kind]()
        out = []
        for pod in built:
            pod.metadata.uid = uid_of(f"Pod/{pod.metadata.name}")
            out.append(pod.to_dict())
        return out

    def _job_pods(self) -> list[Any]:
        job = Job.model_validate(self.obj)
        return [job_pod(job, i, PodPlacement(node_name=NODE)) for i in range(2)]

    def _gang_pods(self) -> list[Any]:
        job = TrainJob.model_validate(self.obj)
        world = job.spec.trainer.most_nodes
        return [
            gang_pod(job, Node(rank, world, 0, PORT, ""), PodPlacement(node_name=NODE))
            for rank in range(world)
        ]

    def _replica_pods(self) -> list[Any]:
        isvc = InferenceService.model_validate(self.obj)
        predictor = isvc.spec.predictor
        template = {  # what the controller resolves models:/digits@champion to
            "ref": "models:/digits/1",
            "path": "/models/digits/1/model.pt",
            "format": "torchscript",
            "class": "",
            "signature": None,
            "batching": isvc.spec.batching.model_dump(mode="json", by_alias=True),
            "env": [e.model_dump(mode="json", by_alias=True) for e in predictor.env],
            "resources": predictor.resources.model_dump(mode="json", by_alias=True),
            "image": predictor.image,
        }
        rev = RevisionStatus(name=f"{isvc.metadata.name}-00001", template=template)
        slot = PodPlacement(node_name=NODE)
        # _build_pod reads nothing from the reconciler; a bare instance will do.
        reconciler = object.__new__(InferenceServiceReconciler)
        pods = [reconciler._build_pod(isvc, rev, slot, i) for i in range(2)]
        for i, pod in enumerate(pods):  # a free port differs from run to run: pin it
            port = str(REPLICA_PORT + i)
            pod.spec.command[pod.spec.command.index("--port") + 1] = port
            pod.metadata.annotations[PORT_ANNOTATION] = port
        return pods


def example(kind: str) -> Example:
    return Example(kind)


def validate(obj: Obj) -> None:
    """The official Kubernetes JSON schema of ``obj``'s kind, strictly (no unknown field)."""
    kubernetes_validate.validate(copy.deepcopy(obj), K8S_VERSION, strict=True)


def assert_golden(name: str, objects: list[Obj]) -> None:
    """``objects`` as YAML equal ``golden/<name>.yaml`` (rewritten with CNAI_UPDATE_GOLDEN=1)."""
    text = yaml.safe_dump_all(objects, sort_keys=True, default_flow_style=False, width=100)
    path = GOLDEN / f"{name}.yaml"
    if os.environ.get("CNAI_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {path}; run with CNAI_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(), (
        f"rendering differs from {path.name}; if the change is intended, run with "
        "CNAI_UPDATE_GOLDEN=1 and review the diff"
    )
