"""The CRDs and install manifests: accepted by Kubernetes' schemas, structural, and
faithful to cnai's types (what the embedded platform accepts, the cluster accepts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from crdcheck import object_errors, structural_errors
from pydantic import Field
from typer.testing import CliRunner

from cnai.cli.main import app
from cnai.core.meta import Resource, WireModel
from cnai.core.registry import Column, KindInfo, Registry
from cnai.platform import platform_registry
from cnai.runtimes.kubernetes.crds import CORE_KINDS, crd_for, crds, structural
from cnai.runtimes.kubernetes.manifests import InstallOptions, install_manifests

K8S_VERSION = "1.37.0"
REPO = Path(__file__).resolve().parents[4]
GOLDEN = Path(__file__).with_name("golden")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return platform_registry()


@pytest.fixture(scope="module")
def by_kind(registry: Registry) -> dict[str, dict[str, Any]]:
    return {c["spec"]["names"]["kind"]: c for c in crds(registry)}


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_every_kind_but_the_core_ones_is_a_crd(
    registry: Registry, by_kind: dict[str, dict[str, Any]]
) -> None:
    kinds = {info.kind for info in registry}
    assert set(by_kind) == kinds - set(CORE_KINDS.values())
    assert {"TrainJob", "InferenceService", "ClusterQueue", "Pod"} <= set(by_kind)


def test_crds_are_valid_kubernetes_objects_with_structural_schemas(
    by_kind: dict[str, dict[str, Any]],
) -> None:
    for kind, crd in by_kind.items():
        kubernetes_validate.validate(crd, K8S_VERSION, strict=True)
        assert structural_errors(_schema(crd)) == [], kind


def test_scope_names_and_status_subresource_follow_the_registry(
    registry: Registry, by_kind: dict[str, dict[str, Any]]
) -> None:
    for info in registry:
        if info.plural in CORE_KINDS:
            continue
        spec = by_kind[info.kind]["spec"]
        assert spec["group"] == "cnai.io"
        assert spec["scope"] == ("Namespaced" if info.namespaced else "Cluster")
        assert spec["names"]["plural"] == info.plural
        assert "cnai" in spec["names"]["categories"]
        version = spec["versions"][0]
        assert version["name"] == "v1alpha1"
        assert ("subresources" in version) == info.has_status, info.kind
    # Short names the cluster's own kinds use stay theirs: `kubectl get po` is core's.
    assert by_kind["Pod"]["spec"]["names"]["shortNames"] == []
    assert by_kind["Node"]["spec"]["names"]["shortNames"] == []
    assert by_kind["TrainJob"]["spec"]["names"]["shortNames"] == ["tj"]


def test_printer_columns_are_cnai_gets_then_age(
    registry: Registry, by_kind: dict[str, dict[str, Any]]
) -> None:
    for info in registry:
        if info.plural in CORE_KINDS:
            continue
        columns = by_kind[info.kind]["spec"]["versions"][0]["additionalPrinterColumns"]
        expected = [
            (c.name, f".{c.path}", 1 if c.wide else 0, "date" if c.type == "date" else "string")
            for c in info.columns
        ]
        got = [(c["name"], c["jsonPath"], c.get("priority", 0), c["type"]) for c in columns]
        assert got == [*expected, ("Age", ".metadata.creationTimestamp", 0, "date")]
    trainjob = by_kind["TrainJob"]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in trainjob if "priority" not in c] == [
        "STATUS",
        "NODES",
        "RESTARTS",
        "Age",
    ]


def test_example_manifests_fit_the_crds(by_kind: dict[str, dict[str, Any]]) -> None:
    checked = 0
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") in CORE_KINDS.values():
                continue
            assert doc["kind"] in by_kind, f"{path}: {doc['kind']} has no CRD"
            assert object_errors(by_kind[doc["kind"]], doc) == [], path
            checked += 1
    assert checked >= 3  # Job, TrainJob, InferenceService


def test_a_wrong_or_unknown_field_is_caught_with_its_path(
    by_kind: dict[str, dict[str, Any]],
) -> None:
    job = yaml.safe_load((REPO / "examples/quickstart/30-trainjob.yaml").read_text())
    job["spec"]["trainer"]["numNodes"] = "two"
    job["spec"]["backoffLimt"] = 3  # a typo the cluster would silently prune
    errors = object_errors(by_kind["TrainJob"], job)
    assert any(e.startswith("spec.trainer.numNodes:") for e in errors), errors
    assert any("backoffLimt" in e for e in errors), errors


def test_objects_the_controllers_write_fit_the_crds(by_kind: dict[str, dict[str, Any]]) -> None:
    from cnai.core.pods import Pod, PodPhase, PodSpec, PodStatus, ResourceRequirements

    pod = Pod.new(
        "p",
        "ns",
        spec=PodSpec(
            command=["python"], resources=ResourceRequirements(requests={"cpu": "500m", "gpu": 1})
        ),
        status=PodStatus(phase=PodPhase.FAILED, reason="OOMKilled", exit_code=137),
    ).to_dict()
    pod["metadata"]["uid"] = "u"
    assert object_errors(by_kind["Pod"], pod) == []


class _Leaf(WireModel):
    size: int = Field(default=1, gt=0, description="A size.")


class _Tree(WireModel):
    name: str
    children: list[_Tree] = Field(default_factory=list)


class _Sample(Resource):
    KIND = "Sample"
    PLURAL = "samples"

    quantity: str | int = 1
    maybe: _Leaf | None = None
    free: dict[str, Any] = Field(default_factory=dict)
    anything: Any = None
    tree: _Tree | None = None
    choice: _Leaf | _Tree | None = None


def test_conversion_rules_on_a_sample_model() -> None:
    schema = structural(_Sample.model_json_schema(mode="validation"))
    props = schema["properties"]
    assert props["quantity"] == {"x-kubernetes-int-or-string": True}
    assert props["maybe"]["nullable"] is True
    assert props["maybe"]["type"] == "object"
    leaf_size = props["maybe"]["properties"]["size"]
    assert leaf_size == {
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
        "description": "A size.",
    }
    assert props["free"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert props["anything"]["x-kubernetes-preserve-unknown-fields"] is True
    children = props["tree"]["properties"]["children"]
    assert children["items"]["x-kubernetes-preserve-unknown-fields"] is True  # recursion
    assert set(props["choice"]["properties"]) == {"size", "name", "children"}
    assert structural_errors(schema) == []
    crd = crd_for(KindInfo(model=_Sample, columns=(Column("SIZE", "maybe.size", wide=True),)))
    kubernetes_validate.validate(crd, K8S_VERSION, strict=True)
    assert "title" not in str(schema)
    assert "default" not in schema["properties"]["maybe"]["properties"]["size"]


def test_install_manifests_are_valid_kubernetes_objects(registry: Registry) -> None:
    for options in (
        InstallOptions(),
        InstallOptions(
            admission="kueue", queue="team-a", replicas=2, shared_gpu_resource="nvidia.com/gpumem"
        ),
        InstallOptions(admission="volcano", namespace="ml-platform", image="reg.local/cnai:dev"),
    ):
        objects = install_manifests(registry, options)
        for obj in objects:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        kinds = [o["kind"] for o in objects]
        assert kinds[0] == "Namespace"
        assert kinds.index("Deployment") > max(
            i for i, k in enumerate(kinds) if k == "CustomResourceDefinition"
        )
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == options.image
        assert f"--admission={options.admission}" in container["args"]
        assert "--store=kubernetes" in container["args"]
        assert deployment["metadata"]["namespace"] == options.namespace
        # Pods that name no image run the operator's: the quickstart's manifests run as-is.
        assert {"name": "CNAI_DEFAULT_IMAGE", "value": options.image} in container["env"]
        assert (f"--queue={options.queue}" in container["args"]) == bool(options.queue)
        tokens = next(o for o in objects if o["metadata"]["name"] == "tokens.cnai.io")
        assert tokens["spec"]["scope"] == "Cluster"
        assert structural_errors(_schema(tokens)) == []


def test_the_operator_may_touch_every_cnai_kind_and_only_the_integrations_chosen(
    registry: Registry,
) -> None:
    def rules(admission: str) -> list[dict[str, Any]]:
        queue = "team-a" if admission == "kueue" else ""
        objects = install_manifests(registry, InstallOptions(admission=admission, queue=queue))
        role = next(
            o
            for o in objects
            if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "cnai-operator"
        )
        return list(role["rules"])

    def allowed(rs: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
        return any(
            group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
            for r in rs
        )

    cnai = rules("cnai")
    for info in registry:
        if info.plural in CORE_KINDS:
            assert allowed(cnai, "", info.plural, "watch")
            continue
        assert allowed(cnai, "cnai.io", info.plural, "watch")
        assert allowed(cnai, "cnai.io", f"{info.plural}/status", "update")
    assert allowed(cnai, "coordination.k8s.io", "leases", "update")
    assert allowed(cnai, "cnai.io", "tokens", "create")
    aggregated = [
        o for o in install_manifests(registry) if o["metadata"]["name"].startswith("cnai-aggregate")
    ]
    assert len(aggregated) == 2
    for role in aggregated:  # editors and viewers get the kinds, never the token records
        assert not allowed(role["rules"], "cnai.io", "tokens", "get")
        assert allowed(role["rules"], "cnai.io", "trainjobs", "get")
    assert allowed(cnai, "", "pods/log", "get")
    assert not allowed(cnai, "", "nodes", "update")
    assert not allowed(cnai, "batch", "jobs", "create")
    assert not allowed(cnai, "scheduling.volcano.sh", "podgroups", "create")
    assert allowed(rules("kueue"), "batch", "jobs", "create")
    assert allowed(rules("volcano"), "scheduling.volcano.sh", "podgroups", "create")


def test_cnai_k8s_manifests_prints_them_and_matches_the_golden_file(registry: Registry) -> None:
    result = CliRunner().invoke(app, ["k8s", "manifests"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert docs == install_manifests(registry)
    golden = GOLDEN / "install-manifests.yaml"
    if os.environ.get("CNAI_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text(), (
        "rerun with CNAI_UPDATE_GOLDEN=1 and review the diff"
    )
    crds_only = CliRunner().invoke(app, ["k8s", "manifests", "--crds-only"])
    kinds = {d["kind"] for d in yaml.safe_load_all(crds_only.stdout) if d}
    assert kinds == {"CustomResourceDefinition"}


def test_cnai_k8s_manifests_refuses_bad_options_naming_them() -> None:
    result = CliRunner().invoke(app, ["k8s", "manifests", "--admission", "yunikorn"])
    assert result.exit_code == 1
    assert "--admission" in result.output
    assert "kueue" in result.output
    result = CliRunner().invoke(app, ["k8s", "manifests", "--admission", "kueue"])
    assert result.exit_code == 1
    assert "--queue: admission kueue needs" in result.output
    result = CliRunner().invoke(app, ["k8s", "manifests", "-n", "Not_A_Name"])
    assert result.exit_code == 1
    assert "--namespace" in result.output
    assert "DNS-1123" in result.output


def test_cnai_k8s_manifests_with_the_ray_runtime_adds_a_ray_cluster_cnai_uses() -> None:
    args = ["k8s", "manifests", "--runtime", "ray", "--ray-workers", "2", "-n", "ml"]
    result = CliRunner().invoke(app, [*args, "--ray-image", "rayproject/ray:2.58.0"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds.index("RayCluster") < kinds.index("Deployment")  # the head first
    cluster = next(d for d in docs if d["kind"] == "RayCluster")
    assert cluster["metadata"]["namespace"] == "ml"
    assert cluster["spec"]["workerGroupSpecs"][0]["replicas"] == 2
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] == "rayproject/ray:2.58.0"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    assert deployment["spec"]["replicas"] == 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["up", "--host=0.0.0.0"]
    assert "--runtime=ray" in container["args"]
    assert "--ray-address=ray://cnai-ray-head-svc.ml.svc:10001" in container["args"]
    assert "--advertise-url=http://cnai.ml.svc:8470" in container["args"]
    assert not any(a.startswith("--store") for a in container["args"])  # SQLite, for now


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--runtime", "slurm"], "--runtime: must be one of", id="unknown-runtime"),
        pytest.param(
            ["--ray-image", "rayproject/ray"],
            "--ray-image: only with runtime ray",
            id="ray-image-alone",
        ),
        pytest.param(
            ["--runtime", "ray", "--replicas", "2"],
            "--replicas: with runtime ray",
            id="ray-one-replica",
        ),
        pytest.param(
            ["--runtime", "ray", "--admission", "volcano"],
            "--admission: with runtime ray cnai admits",
            id="ray-with-volcano",
        ),
        pytest.param(
            ["--runtime", "ray", "--ray-workers", "3", "--ray-max-workers", "2"],
            "--ray-max-workers: must be at least --ray-workers",
            id="ray-max-below-min",
        ),
    ],
)
def test_cnai_k8s_manifests_refuses_ray_options_it_cannot_honour(
    args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["k8s", "manifests", *args])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
