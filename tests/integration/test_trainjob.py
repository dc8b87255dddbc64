"""TrainJobs on the real platform: real processes, real torch.distributed (gloo).

The DDP tests run ``examples/digits/train.py`` (2 workers). The tests of failure policy,
backoff, suspend, deadline and elasticity run ``trainers/steps.py``, a torch-free trainer
that counts steps with a checkpoint, so they are quick. Every test deletes its jobs (the
session platform's quota is shared); waits are bounded and generous.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import RunningPlatform, unique, wait_until
from workloads import HOLD, JobBuilder, pod_dir

from cnai import Client
from cnai.batch.api import Job
from cnai.core.errors import Invalid, NotFound
from cnai.core.pods import Pod
from cnai.tracking.sdk import TrackingClient
from cnai.training.api import TrainJob, TrainJobPhase

REPO = Path(__file__).resolve().parents[2]
STEPS = str(Path(__file__).resolve().parent / "trainers" / "steps.py")
DIGITS = str(REPO / "examples" / "digits" / "train.py")
WAIT_S = 120.0


@pytest.fixture
def created(client: Client, namespace: str) -> Iterator[list[tuple[type, str]]]:
    """(kind, name) of what a test creates; deleted at the end (quota freed)."""
    made: list[tuple[type, str]] = []
    yield made
    for kind, name in made:
        with contextlib.suppress(NotFound):
            client.delete(kind, name, namespace)


def trainjob(name: str, namespace: str, command: list[str], **spec: Any) -> dict[str, Any]:
    trainer = {
        "numNodes": 2,
        "command": [sys.executable, *command],
        "resourcesPerNode": {"requests": {"cpu": "1"}},
        "terminationGracePeriodSeconds": 10,
        **spec.pop("trainer", {}),
    }
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"trainer": trainer, **spec},
    }


def _get(client: Client, name: str, namespace: str) -> TrainJob:
    return client.get(TrainJob, name, namespace)


def _wait_phase(client: Client, name: str, ns: str, *phases: TrainJobPhase) -> TrainJob:
    wait_until(lambda: _get(client, name, ns).status.phase in phases, WAIT_S, f"{name} {phases}")
    return _get(client, name, ns)


def _logs(client: Client, pod: str, namespace: str) -> str:
    """The pod's output so far ("" while it does not exist yet)."""
    try:
        return b"".join(client.logs(pod, namespace)).decode("utf-8", "replace")
    except NotFound:
        return ""


def _condition(job: TrainJob, type: str) -> tuple[str, str]:
    found = next(c for c in job.status.conditions if c.type == type)
    return found.status, found.reason


# -- real DDP ------------------------------------------------------------------------


def test_ddp_digits_on_two_workers_succeeds_with_metrics_and_model_recorded(
    platform: RunningPlatform, client: Client, namespace: str, created: list[tuple[type, str]]
) -> None:
    name = unique("digits")
    created.append((TrainJob, name))
    client.create(
        trainjob(
            name,
            namespace,
            [DIGITS, "--epochs", "12", "--register", "digits"],
            trainer={"workingDir": str(REPO)},
        )
    )

    job = _wait_phase(client, name, namespace, TrainJobPhase.SUCCEEDED, TrainJobPhase.FAILED)

    out = _logs(client, f"{name}-0-0", namespace)
    assert job.status.phase is TrainJobPhase.SUCCEEDED, out
    assert (job.status.num_nodes, job.status.restarts) == (2, 0)
    assert [(r.rank, r.phase, r.exit_code) for r in job.status.replicas] == [
        (0, "Succeeded", 0),
        (1, "Succeeded", 0),
    ]
    assert "world 2" in out
    accuracy = float(re.findall(r"test accuracy (\S+)", out)[-1])
    assert accuracy >= 0.95
    with TrackingClient(platform.url, platform.admin_token(), namespace) as tracking:
        run = tracking.get_run(job.status.run_id)
        assert run["owner"]["kind"] == "TrainJob"
        assert tracking.history(run["id"], "accuracy")["steps"] == list(range(1, 13))
        assert [f["path"] for f in tracking.list_artifacts(run["id"], "model")] == [
            "model/model.pt"
        ]
    version = client.get("modelversion", "digits-v1", namespace)
    assert version.spec["runId"] == job.status.run_id
    assert version.spec["format"] == "torchscript"
    assert version.spec["metrics"]["accuracy"] >= 0.95


def test_sigkill_of_one_worker_restarts_the_gang_which_resumes_from_its_checkpoint(
    platform: RunningPlatform, client: Client, namespace: str, created: list[tuple[type, str]]
) -> None:
    name = unique("killed")
    created.append((TrainJob, name))
    args = [DIGITS, "--epochs", "6", "--epoch-sleep", "1"]
    client.create(trainjob(name, namespace, args, trainer={"workingDir": str(REPO)}))
    wait_until(
        lambda: "epoch 2 " in _logs(client, f"{name}-0-0", namespace), WAIT_S, "two epochs done"
    )

    victim = client.get(Pod, f"{name}-0-1", namespace)
    pid = int((pod_dir(platform.home, victim) / "child.pid").read_text())
    os.kill(pid, signal.SIGKILL)

    job = _wait_phase(client, name, namespace, TrainJobPhase.SUCCEEDED, TrainJobPhase.FAILED)
    assert job.status.phase is TrainJobPhase.SUCCEEDED
    assert (job.status.restarts, job.status.failures) == (1, 1)
    # The first gang's pods are gone (stopped and deleted); it had done 2 epochs or more.
    second = _logs(client, f"{name}-1-0", namespace)
    resumed = int(re.findall(r"resumed from epoch (\d+)", second)[0])
    assert resumed >= 2
    redone = [int(n) for n in re.findall(r"^epoch (\d+) ", second, re.M)]
    assert redone == list(range(resumed + 1, 7))  # nothing already done is done again
    assert "restart 1" in second


# -- the failure policy, backoff, suspend, deadline (torch-free trainer) ---------------


def test_a_permanent_exit_code_fails_the_job_at_once(
    client: Client, namespace: str, created: list[tuple[type, str]]
) -> None:
    name = unique("fatal")
    created.append((TrainJob, name))
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    args = [STEPS, "--fail-rank", "1", "--exit-code", "42"]
    client.create(trainjob(name, namespace, args, failurePolicy=policy, backoffLimit=5))

    job = _wait_phase(client, name, namespace, TrainJobPhase.FAILED)

    assert _condition(job, "Failed") == ("True", "PodFailurePolicy")
    assert "exit code 42" in job.status.message
    assert (job.status.restarts, job.status.failures) == (0, 0)


def test_failures_are_retried_up_to_the_backoff_limit(
    client: Client, namespace: str, created: list[tuple[type, str]]
) -> None:
    name = unique("flaky")
    created.append((TrainJob, name))
    client.create(trainjob(name, namespace, [STEPS, "--fail-rank", "0"], backoffLimit=1))

    job = _wait_phase(client, name, namespace, TrainJobPhase.FAILED)

    assert _condition(job, "Failed") == ("True", "BackoffLimitExceeded")
    assert (job.status.restarts, job.status.failures) == (1, 2)
    # Each gang got its restart count.
    assert "restart=1" in _logs(client, f"{name}-1-0", namespace)


def test_a_gang_that_fails_once_recovers_and_succeeds(
    client: Client, namespace: str, created: list[tuple[type, str]]
) -> None:
    name = unique("recovers")
    created.append((TrainJob, name))
    args = [STEPS, "--fail-rank", "1", "--fail-times", "1", "--steps", "10"]
    client.create(trainjob(name, namespace, args))

    job = _wait_phase(client, name, namespace, TrainJobPhase.SUCCEEDED, TrainJobPhase.FAILED)

    assert job.status.phase is TrainJobPhase.SUCCEEDED
    assert (job.status.restarts, job.status.failures) == (1, 1)
    resumed = _logs(client, f"{name}-1-0", namespace).splitlines()[0]
    assert int(re.findall(r"start step=(\d+)", resumed)[0]) >= 1


def test_suspend_stops_the_gang_and_resume_continues_from_the_checkpoint(
    client: Client, namespace: str, created: list[tuple[type, str]]
) -> None:
    name = unique("pause")
    created.append((TrainJob, name))
    client.create(trainjob(name, namespace, [STEPS, "--steps", "60", "--step-seconds", "0.1"]))
    wait_until(lambda: "step 5\n" in _logs(client, f"{name}-0-0", namespace), WAIT_S, "5 steps")

    job = _get(client, name, namespace)
    job.spec.suspend = True
    client.update(job)
    job = _wait_phase(client, name, namespace, TrainJobPhase.SUSPENDED)
    wait_until(
        lambda: all(
            p.status.phase.terminal
            for p in client.list(Pod, namespace).items
            if name in p.metadata.name
        ),
        WAIT_S,
        "the gang stopped",
    )
    # The stopped gang's pods are gone (deleted on suspend); it had reached step 5 or more.

    job = _get(client, name, namespace)
    job.spec.suspend = False
    client.update(job)
    job = _wait_phase(client, name, namespace, TrainJobPhase.SUCCEEDED, TrainJobPhase.FAILED)

    assert job.status.phase is TrainJobPhase.SUCCEEDED
    assert (job.status.restarts, job.status.failures) == (1, 0)  # a suspend is no failure
    start = _logs(client, f"{name}-1-0", namespace).splitlines()[0]
    assert int(re.findall(r"start step=(\d+)", start)[0]) >= 5


def test_the_deadline_fails_the_job_with_a_clear_reason(
    client: Client, namespace: str, created: list[tuple[type, str]]
) -> None:
    name = unique("late")
    created.append((TrainJob, name))
    args = [STEPS, "--steps", "1000", "--step-seconds", "0.1"]
    client.create(trainjob(name, namespace, args, activeDeadlineSeconds=2))

    job = _wait_phase(client, name, namespace, TrainJobPhase.FAILED)

    assert _condition(job, "Failed") == ("True", "DeadlineExceeded")
    assert "deadline (2s)" in job.status.message
    wait_until(
        lambda: all(
            p.status.phase.terminal
            for p in client.list(Pod, namespace).items
            if name in p.metadata.name
        ),
        WAIT_S,
        "the nodes stopped",
    )


# -- elastic ---------------------------------------------------------------------------


def test_an_elastic_job_starts_small_grows_when_room_frees_and_finishes(
    client: Client,
    namespace: str,
    mark: str,
    tmp_path: Path,
    created: list[tuple[type, str]],
) -> None:
    """minNodes 1, maxNodes 2, with one of the machine's cpus held by another job."""
    quota = os.cpu_count() or 2
    if quota != 2:
        pytest.skip(f"the test sizes its holder for a 2-cpu quota; this machine has {quota}")
    holder, name = unique("holder"), unique("elastic")
    created += [(Job, holder), (TrainJob, name)]
    code = HOLD.format(release=str(tmp_path / "release"), term=str(tmp_path / "term"))
    held = JobBuilder(holder, namespace).runs(code, mark)
    held.pod.spec["resources"] = {"requests": {"cpu": "1"}}
    client.create(held.build())
    wait_until(
        lambda: client.get(Job, holder, namespace).status.phase == "Running", WAIT_S, "holder"
    )

    args = [STEPS, "--steps", "80", "--step-seconds", "0.05"]
    client.create(
        trainjob(name, namespace, args, trainer={"numNodes": None, "minNodes": 1, "maxNodes": 2})
    )
    wait_until(lambda: "step 3\n" in _logs(client, f"{name}-0-0", namespace), WAIT_S, "world 1")
    assert _get(client, name, namespace).status.num_nodes == 1
    assert "world=1" in _logs(client, f"{name}-0-0", namespace)

    (tmp_path / "release").touch()  # the holder ends: its cpu frees
    job = _wait_phase(client, name, namespace, TrainJobPhase.SUCCEEDED, TrainJobPhase.FAILED)

    assert job.status.phase is TrainJobPhase.SUCCEEDED
    assert (job.status.num_nodes, job.status.failures) == (2, 0)
    assert job.status.restarts >= 1
    last = f"{name}-{job.status.restarts}-0"
    out = _logs(client, last, namespace)
    assert "world=2" in out.splitlines()[0]
    assert int(re.findall(r"start step=(\d+)", out)[0]) >= 3  # resumed, not restarted
    assert "done steps=80 world=2" in out


# -- bad specs -------------------------------------------------------------------------


def test_bad_specs_are_refused_naming_the_field(client: Client, namespace: str) -> None:
    bad = trainjob(unique("bad"), namespace, [STEPS], queue="no-such-queue")
    bad["spec"]["trainer"].update(numNodes=0, command=[])
    bad["spec"]["trainer"]["resourcesPerNode"] = {"requests": {"cpu": "-1"}}
    with pytest.raises(Invalid) as refused:
        client.create(bad)
    fields = {c.field for c in refused.value.causes}
    assert "spec.trainer.resourcesPerNode.requests" in fields

    bad["spec"]["trainer"]["resourcesPerNode"] = {"requests": {"cpu": "1"}}
    with pytest.raises(Invalid) as refused:
        client.create(bad)
    assert {c.field for c in refused.value.causes} == {
        "spec.trainer.numNodes",
        "spec.trainer.command",
    }

    bad["spec"]["trainer"].update(numNodes=1, command=["python", STEPS])
    with pytest.raises(Invalid) as refused:
        client.create(bad)
    assert [c.field for c in refused.value.causes] == ["spec.queue"]
