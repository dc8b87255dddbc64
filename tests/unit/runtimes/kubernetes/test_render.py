"""Rendering cnai's workloads as Kubernetes objects: goldens, official schemas, and the
rules a cluster imposes (images, GPUs, working directories, gang rendezvous)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from cnai.core.kubelet import GPU_ANNOTATION, LaunchError
from cnai.runtimes.kubernetes import manifests
from cnai.runtimes.kubernetes.render import (
    Admission,
    RenderError,
    RenderOptions,
    SharedGPU,
    dns_label,
    gang_of,
    render_gang_service,
    render_pod,
    render_revision,
)
from cnai.serving import api as serving_api
from cnai.serving import controller as serving_controller
from cnai.serving import server as model_server
from cnai.training import api as training_api
from cnai.training import gang as training_gang

from .builders import IMAGE, Obj, assert_golden, example, validate

PLATFORM_ENV = {"CNAI_SERVER": "http://cnai.cnai-system.svc:8000", "CNAI_NAMESPACE": "quickstart"}
DEFAULT = RenderOptions()
EVERY_OPTION = RenderOptions(
    namespace="ml-team",
    default_image="ghcr.io/cnai-dev/runner:0.1.0",
    image_pull_policy="IfNotPresent",
    image_pull_secrets=("registry",),
    service_account="trainer",
    scheduler_name="custom-scheduler",
    bind_node_name=True,
    owner_references=False,
    cluster_domain="corp.internal",
)


def gang_objects(pods: list[Obj], options: RenderOptions) -> list[Obj]:
    gang = gang_of(pods[0], options.namespace)
    assert gang is not None
    rendered = [render_pod(p, options, platform_env=PLATFORM_ENV) for p in pods]
    return [render_gang_service(gang, options), *rendered]


def everything(options: RenderOptions) -> list[Obj]:
    """Every built-in object each quickstart example renders to under ``options``."""
    out = [
        render_pod(p, options, platform_env=PLATFORM_ENV, flavor_labels={"pool": "cpu"})
        for p in example("Job").image().pods()
    ]
    out += gang_objects(example("TrainJob").image().pods(), options)
    out += gang_objects(example("TrainJob").image().num_proc_per_node(4).pods(), options)
    replica = example("InferenceService").image().pods()[0]
    out += render_revision(replica, options, replicas=3, platform_env=PLATFORM_ENV)
    return [o for o in out if o["apiVersion"] in ("v1", "apps/v1")]


# -- goldens -------------------------------------------------------------------------------


def test_job_pods_match_the_golden_file() -> None:
    pods = example("Job").image().pods()
    rendered = [render_pod(p, DEFAULT, platform_env=PLATFORM_ENV) for p in pods]
    assert_golden("job-pods", rendered)


def test_trainjob_gang_matches_the_golden_file() -> None:
    assert_golden("trainjob-gang", gang_objects(example("TrainJob").image().pods(), DEFAULT))


def test_torchrun_gang_matches_the_golden_file() -> None:
    pods = example("TrainJob").image().num_proc_per_node(4).gpus("4").pods()
    assert_golden("trainjob-gang-torchrun", gang_objects(pods, DEFAULT))


def test_inferenceservice_replica_pods_match_the_golden_file() -> None:
    pods = example("InferenceService").image().pods()
    rendered = [render_pod(p, DEFAULT, platform_env=PLATFORM_ENV) for p in pods]
    for pod in rendered:
        validate(pod)
    assert_golden("inferenceservice-replica-pods", rendered)


def test_inferenceservice_revision_matches_the_golden_file() -> None:
    replica = example("InferenceService").image().pods()[0]
    deployment, service = render_revision(replica, DEFAULT, replicas=2, platform_env=PLATFORM_ENV)
    assert_golden("inferenceservice-revision", [deployment, service])


@pytest.mark.parametrize(
    ("name", "amount", "shared"),
    [
        pytest.param("gpu-whole", "2", None, id="whole-gpus-are-nvidia-com-gpu"),
        pytest.param("gpu-hami", "500m", SharedGPU.hami(), id="half-a-gpu-as-hami-percentages"),
        pytest.param(
            "gpu-time-sliced", "250m", SharedGPU.time_sliced(), id="a-quarter-as-one-replica"
        ),
    ],
)
def test_gpu_requests_match_the_golden_files(
    name: str, amount: str, shared: SharedGPU | None
) -> None:
    pod = example("Job").image().gpus(amount).pods()[0]
    rendered = render_pod(pod, RenderOptions(shared_gpu=shared), platform_env=PLATFORM_ENV)
    validate(rendered)
    assert_golden(name, [rendered])


def test_every_option_matches_the_golden_file() -> None:
    pod = example("Job").pods()[0]  # no image: the default one runs
    rendered = render_pod(pod, EVERY_OPTION, flavor_labels={"gpu.model": "h200", "pool": "a"})
    assert_golden("job-pod-every-option", [rendered])


# -- the official schemas ------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(DEFAULT, id="defaults"),
        pytest.param(EVERY_OPTION, id="every-option"),
        pytest.param(RenderOptions(admission=Admission.KUEUE, queue="team-a"), id="kueue"),
        pytest.param(RenderOptions(admission=Admission.VOLCANO, queue="ml"), id="volcano"),
    ],
)
def test_every_rendered_object_validates_against_kubernetes_schemas(
    options: RenderOptions,
) -> None:
    objects = everything(options)
    assert {o["kind"] for o in objects} == {"Pod", "Service", "Deployment"}
    for obj in objects:
        validate(obj)


# -- what a cluster needs ------------------------------------------------------------------


def test_secret_references_stay_references_and_values_never_appear() -> None:
    pod = example("Job").image().pods()[0]
    # The pod controller's resolved env carries the Secret's value; it must not leak.
    launch_env = {**PLATFORM_ENV, "DEMO_USER": "demo-secret-value"}
    rendered = render_pod(pod, DEFAULT, platform_env=launch_env)
    env = {e["name"]: e for e in rendered["spec"]["containers"][0]["env"]}
    ref = {"secretKeyRef": {"name": "demo-credentials", "key": "username"}}
    assert env["DEMO_USER"] == {"name": "DEMO_USER", "valueFrom": ref}
    assert "demo-secret-value" not in yaml.safe_dump(rendered)


def test_gang_members_reach_rank_0_through_the_headless_service() -> None:
    pods = example("TrainJob").image().num_proc_per_node(2).pods()
    service, rank0, rank1 = gang_objects(pods, DEFAULT)
    master = "digits-0-0.digits-0.quickstart.svc.cluster.local"
    for member in (rank0, rank1):
        container = member["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MASTER_ADDR"] == master
        assert f"--master-addr={master}" in container["command"]
        assert "127.0.0.1" not in yaml.safe_dump(member)
        assert member["spec"]["subdomain"] == service["metadata"]["name"]
        labels = member["metadata"]["labels"]
        assert all(labels[k] == v for k, v in service["spec"]["selector"].items())
    assert rank0["spec"]["hostname"] == master.split(".")[0]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True


def test_long_job_names_give_the_same_pod_names_as_the_gang_builder() -> None:
    pod = example("TrainJob").image().pods()[0]
    job = "a" * 58 + "-x-y"
    pod["metadata"]["labels"][training_api.TRAINJOB_NAME_LABEL] = job
    gang = gang_of(pod)
    assert gang is not None
    for rank in (0, 7, 12):
        assert gang.member(rank) == training_gang.pod_name(job, 0, rank)
    assert len(gang.name) <= 63
    assert gang.master_host("cluster.local").startswith(training_gang.pod_name(job, 0, 0) + ".")


@pytest.mark.parametrize(
    ("name", "letter_first", "expected"),
    [
        pytest.param("digits-0", True, "digits-0", id="a-valid-name-is-kept"),
        pytest.param("7b-chat-0", True, "x-7b-chat-0", id="a-service-name-starts-with-a-letter"),
        pytest.param("7b-chat-0-1", False, "7b-chat-0-1", id="a-hostname-may-start-with-a-digit"),
        pytest.param("A_b.c", False, "a-b-c", id="other-characters-become-dashes"),
    ],
)
def test_dns_labels(name: str, letter_first: bool, expected: str) -> None:
    assert dns_label(name, letter_first=letter_first) == expected


def test_labels_keep_the_pods_own_and_drop_what_integrations_own() -> None:
    pod = example("Job").image().pods()[0]
    pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = "sneaky"
    pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "someone-else"
    pod["metadata"]["annotations"][GPU_ANNOTATION] = "0,1"
    rendered = render_pod(pod, DEFAULT)
    labels = rendered["metadata"]["labels"]
    assert labels["cnai.io/example"] == "quickstart"
    assert labels["app.kubernetes.io/managed-by"] == "cnai"
    assert labels["cnai.io/pod-uid"] == pod["metadata"]["uid"]
    assert "kueue.x-k8s.io/queue-name" not in labels
    assert GPU_ANNOTATION not in rendered["metadata"]["annotations"]


def test_the_owner_is_the_cnai_pod_custom_resource() -> None:
    pod = example("Job").image().pods()[0]
    [ref] = render_pod(pod, DEFAULT)["metadata"]["ownerReferences"]
    assert ref == {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Pod",
        "name": pod["metadata"]["name"],
        "uid": pod["metadata"]["uid"],
        "controller": True,
    }


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        pytest.param(False, None, id="the-kubernetes-scheduler-places-by-default"),
        pytest.param(True, "kubernetes", id="bound-when-cnai-nodes-mirror-real-ones"),
    ],
)
def test_node_name_is_copied_only_when_asked(bind: bool, expected: str | None) -> None:
    pod = example("Job").image().pods()[0]
    rendered = render_pod(pod, RenderOptions(bind_node_name=bind))
    assert rendered["spec"].get("nodeName") == expected


def test_a_relative_working_dir_of_dot_means_the_images_own() -> None:
    pod = example("TrainJob").image().pods()[0]  # the example says workingDir: .
    assert "workingDir" not in render_pod(pod, DEFAULT)["spec"]["containers"][0]
    pod = example("TrainJob").image().working_dir("/workspace").pods()[0]
    assert render_pod(pod, DEFAULT)["spec"]["containers"][0]["workingDir"] == "/workspace"


@pytest.mark.parametrize(
    ("kind", "change", "options", "field", "words"),
    [
        pytest.param(
            "Job",
            lambda e: e.image().gpus("500m"),
            DEFAULT,
            "spec.resources.requests.gpu",
            ("quickstart/primes-0", "shared-GPU", "--shared-gpu-resource", "whole GPU"),
            id="half-a-gpu-without-a-shared-gpu-resource",
        ),
        pytest.param(
            "Job",
            lambda e: e.image().gpus("1500m"),
            RenderOptions(shared_gpu=SharedGPU.hami()),
            "spec.resources.requests.gpu",
            ("1.5 GPUs", "whole GPUs"),
            id="more-than-one-gpu-must-be-whole",
        ),
        pytest.param(
            "Job",
            lambda e: e.image().gpus("1", limits="2"),
            DEFAULT,
            "spec.resources.limits.gpu",
            ("must equal spec.resources.requests.gpu",),
            id="gpu-limits-must-equal-requests",
        ),
        pytest.param(
            "TrainJob",
            lambda e: e,
            DEFAULT,
            "spec.image",
            ("quickstart/digits-0-0", "the image is what runs", "default image"),
            id="no-image",
        ),
        pytest.param(
            "TrainJob",
            lambda e: e.image().working_dir("examples/digits"),
            DEFAULT,
            "spec.workingDir",
            ("'examples/digits' is relative", "absolute path"),
            id="relative-working-dir",
        ),
    ],
)
def test_what_a_cluster_cannot_run_is_refused_with_the_field_and_the_rule(
    kind: str, change: Any, options: RenderOptions, field: str, words: tuple[str, ...]
) -> None:
    pod = change(example(kind)).pods()[0]
    with pytest.raises(RenderError) as caught:
        render_pod(pod, options)
    message = str(caught.value)
    assert f": {field}: " in message
    assert caught.value.field == field
    for word in words:
        assert word in message
    assert isinstance(caught.value, LaunchError)  # the pod controller shows it as Pending


@pytest.mark.parametrize(
    ("resource", "fraction", "expected"),
    [
        pytest.param(
            "nvidia.com/gpumem-percentage",
            "0.5",
            {"nvidia.com/gpu": "1", "nvidia.com/gpumem-percentage": "50"},
            id="hami-memory-percentage",
        ),
        pytest.param(
            "nvidia.com/gpucores",
            "0.333",
            {"nvidia.com/gpu": "1", "nvidia.com/gpucores": "34"},
            id="hami-cores-rounded-up",
        ),
        pytest.param(
            "nvidia.com/gpu.shared", "0.25", {"nvidia.com/gpu.shared": "1"}, id="time-sliced"
        ),
    ],
)
def test_a_shared_gpu_resource_is_read_from_its_name(
    resource: str, fraction: str, expected: dict[str, str]
) -> None:
    from decimal import Decimal

    assert SharedGPU.named(resource).limits(Decimal(fraction)) == expected


def test_the_model_server_listens_for_its_service_and_is_ready_when_loaded() -> None:
    replica = example("InferenceService").image().pods()[0]
    deployment, service = render_revision(replica, DEFAULT, replicas=0)
    assert deployment["spec"]["replicas"] == 0  # scaled to zero by cnai's autoscaler
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    argv = container["command"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - it serves its Service
    assert argv[argv.index("--port") + 1] == str(model_server.DEFAULT_PORT)
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert selector[serving_api.REVISION_LABEL] == service["metadata"]["name"] == "digits-00001"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in selector.items())
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"


SERVER = ["python", "-m", "cnai.serving.server", "--name", "digits", "--port", "40100"]
ANYWHERE = "0.0.0.0"  # noqa: S104 - a replica is reached at its Pod's IP
Argv = tuple[list[str], list[str]]


@pytest.mark.parametrize(
    ("kind", "given", "want"),
    [
        pytest.param(
            "InferenceService",
            ([*SERVER, "--host", "127.0.0.1"], []),
            ([*SERVER, "--host", ANYWHERE], []),
            id="a-replica-listens-on-every-interface-of-its-pod",
        ),
        pytest.param(
            "InferenceService",
            (SERVER, ["--host=127.0.0.1"]),
            (SERVER, [f"--host={ANYWHERE}"]),
            id="the-host-equals-form-in-args-too",
        ),
        pytest.param(
            "InferenceService",
            (["python3", "-u", "-mcnai.serving.server", "--host", "127.0.0.1"], []),
            (["python3", "-u", "-mcnai.serving.server", "--host", ANYWHERE], []),
            id="python-m-without-a-space-runs-the-model-server-too",
        ),
        pytest.param(
            "InferenceService",
            ([*SERVER, "--host", "10.1.2.3"], []),
            ([*SERVER, "--host", "10.1.2.3"], []),
            id="a-host-other-than-loopback-is-kept",
        ),
        pytest.param(
            "Job",
            (["python", "app.py", "--host", "127.0.0.1"], ["--host=127.0.0.1"]),
            (["python", "app.py", "--host", "127.0.0.1"], ["--host=127.0.0.1"]),
            id="another-pods-host-is-its-own",
        ),
        pytest.param(
            "Job",
            (["python", "-m", "http.server", "--host", "127.0.0.1"], ["cnai.serving.server"]),
            (["python", "-m", "http.server", "--host", "127.0.0.1"], ["cnai.serving.server"]),
            id="naming-the-module-without-running-it-is-not-the-server",
        ),
    ],
)
def test_model_server_replicas_listen_where_the_gateway_reaches_them(
    kind: str, given: Argv, want: Argv
) -> None:
    pod = example(kind).image().pods()[0]
    pod["spec"]["command"], pod["spec"]["args"] = given
    container = render_pod(pod, DEFAULT)["spec"]["containers"][0]
    assert (container["command"], container.get("args", [])) == want


def test_kept_in_sync_with_the_job_kinds_and_the_operator() -> None:
    from cnai.runtimes.kubernetes import render

    assert render.TRAINJOB_NAME_LABEL == training_api.TRAINJOB_NAME_LABEL
    assert render.TRAINJOB_UID_LABEL == training_api.TRAINJOB_UID_LABEL
    assert render.GENERATION_LABEL == training_api.GENERATION_LABEL
    assert render.RANK_LABEL == training_api.RANK_LABEL
    assert render.WORLD_ANNOTATION == training_api.WORLD_ANNOTATION
    assert render.LOCAL_MASTER_ADDR == training_gang.LOCAL_MASTER_ADDR
    assert render.SERVICE_LABEL == serving_api.SERVICE_LABEL
    assert render.REVISION_LABEL == serving_api.REVISION_LABEL
    assert render.MODEL_SERVER_PORT == model_server.DEFAULT_PORT
    assert model_server.__name__ == render.MODEL_SERVER_MODULE
    assert render.LOCAL_HOST == serving_controller.LOCAL_HOST
    assert {a.value for a in Admission} == set(manifests.ADMISSIONS)


def test_images_given_by_the_manifest_win_over_the_default() -> None:
    pod = example("Job").image(IMAGE).pods()[0]
    rendered = render_pod(pod, RenderOptions(default_image="other:1"))
    assert rendered["spec"]["containers"][0]["image"] == IMAGE
