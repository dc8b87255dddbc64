"""RayRuntime on a real two-node Ray cluster: exit codes, logs by offset and follow, env
and working dir, stop, idempotent launch, adoption by a new runtime, and pods that do
not fit."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cnai.core.runtime import ProcessState
from cnai.runtimes.ray import RayRuntime

from .builders import make_pod, read_logs, wait_exited, wait_state

pytestmark = [pytest.mark.anyio, pytest.mark.ray, pytest.mark.timeout(60)]


@pytest.mark.parametrize(
    ("script", "code", "reason"),
    [
        pytest.param("echo out; echo err >&2; exit 0", 0, "Completed", id="exit-0-is-completed"),
        pytest.param("echo out; echo err >&2; exit 3", 3, "Error", id="exit-3-is-error"),
    ],
)
async def test_process_runs_then_exits_with_its_code_and_output(
    runtime: RayRuntime, script: str, code: int, reason: str
) -> None:
    pod = make_pod().shell(f"sleep 0.5; {script}").cpu("1").build()
    await runtime.launch(pod)
    await wait_state(runtime, pod.uid, ProcessState.RUNNING)
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.exit_code, seen.reason) == (code, reason)
    assert seen.started_at is not None
    assert seen.finished_at is not None
    assert seen.started_at <= seen.finished_at
    assert await read_logs(runtime, pod.uid) == b"out\nerr\n"
    assert await read_logs(runtime, pod.uid, offset=4) == b"err\n"
    # The ended pod's actor is gone (its CPU free for others); the answers above came
    # from the records it left.
    deadline = time.monotonic() + 10
    while await asyncio.to_thread(runtime._handle, pod.uid) is not None:
        assert time.monotonic() < deadline, "the ended pod's actor still lives"
        await asyncio.sleep(0.05)


async def test_follow_streams_output_while_it_runs(runtime: RayRuntime) -> None:
    pod = make_pod().shell("for i in 1 2 3; do echo line$i; sleep 0.3; done").build()
    await runtime.launch(pod)
    await wait_state(runtime, pod.uid, ProcessState.RUNNING)
    chunks = [c async for c in runtime.logs(pod.uid, follow=True)]
    assert b"".join(chunks) == b"line1\nline2\nline3\n"
    assert len(chunks) > 1, "follow read the output in one piece: it did not stream"
    assert (await runtime.observe(pod.uid)).state is ProcessState.EXITED


async def test_env_and_working_dir_reach_the_process(runtime: RayRuntime, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("from the working dir")
    pod = make_pod().shell('echo "$GREETING"; cat data.txt').env(GREETING="hello")
    launch = pod.workdir(tmp_path).build()
    await runtime.launch(launch)
    seen = await wait_exited(runtime, launch.uid)
    assert seen.reason == "Completed", await read_logs(runtime, launch.uid)
    assert await read_logs(runtime, launch.uid) == b"hello\nfrom the working dir"


async def test_stop_sigterms_the_process(runtime: RayRuntime) -> None:
    pod = make_pod().shell("echo up; sleep 30").build()
    await runtime.launch(pod)
    await wait_state(runtime, pod.uid, ProcessState.RUNNING)
    await runtime.stop(pod.uid, grace_seconds=20)
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.exit_code, seen.reason) == (143, "Killed")
    assert "SIGTERM" in seen.message


async def test_stop_ends_the_process_group_within_grace(runtime: RayRuntime) -> None:
    # The shell ignores SIGTERM: only the SIGKILL after the grace ends it.
    pod = make_pod().shell("trap '' TERM; echo up; sleep 30 & wait").build()
    await runtime.launch(pod)
    await wait_state(runtime, pod.uid, ProcessState.RUNNING)
    while await read_logs(runtime, pod.uid) != b"up\n":  # the trap is set
        await asyncio.sleep(0.05)
    began = time.monotonic()
    await runtime.stop(pod.uid, grace_seconds=0.5)
    seen = await wait_exited(runtime, pod.uid)
    assert time.monotonic() - began < 10
    assert (seen.exit_code, seen.reason) == (137, "Killed")
    assert "SIGKILL" in seen.message


async def test_bad_placement_strategy_is_a_start_error(runtime: RayRuntime) -> None:
    pod = make_pod().shell("true").gang("job", 0, 1, strategy="scatter").build()
    await runtime.launch(pod)
    seen = await runtime.observe(pod.uid)
    assert (seen.state, seen.reason) == (ProcessState.EXITED, "StartError")
    assert "cnai.io/placement-strategy" in seen.message


async def test_missing_executable_is_a_start_error(runtime: RayRuntime) -> None:
    pod = make_pod().build()
    await runtime.launch(replace(pod, command=("/no/such/binary", "x")))
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.exit_code, seen.reason) == (127, "StartError")
    assert "/no/such/binary" in seen.message


async def test_platform_settings_stay_out_of_the_pod(runtime: RayRuntime) -> None:
    pod = make_pod().shell('echo "${CNAI_TOKEN:-unset} $CNAI_SERVER"').env(CNAI_SERVER="url")
    await runtime.launch(pod.build())
    with_token = make_pod().shell('echo "${CNAI_TOKEN:-unset}"').env(CNAI_TOKEN="own").build()
    await runtime.launch(with_token)
    await wait_exited(runtime, pod.build().uid)
    await wait_exited(runtime, with_token.uid)
    assert await read_logs(runtime, pod.build().uid) == b"unset url\n"
    assert await read_logs(runtime, with_token.uid) == b"own\n"


async def test_launch_is_idempotent_per_uid(runtime: RayRuntime) -> None:
    pod = make_pod().shell("echo once").build()
    await asyncio.gather(runtime.launch(pod), runtime.launch(pod))
    await runtime.launch(pod)
    await wait_exited(runtime, pod.uid)
    assert await read_logs(runtime, pod.uid) == b"once\n"
    assert await runtime.known_pods() == [pod.uid]


async def test_a_pod_observed_while_its_actor_is_being_created_is_pending(
    runtime: RayRuntime,
) -> None:
    """Observing a pod between the launch's claim and its actor's creation (the first
    creation exports the actor class: slow) must not take it for a start error: `cnai
    logs` on a new pod once failed a TrainJob's gang that way."""
    pod = make_pod().shell("echo created").build()
    entered, release = threading.Event(), threading.Event()
    create = runtime._start_actor

    def slow_create(*args: Any) -> None:
        entered.set()
        release.wait(10)
        create(*args)

    runtime._start_actor = slow_create  # type: ignore[method-assign]  # widen the window
    launch = asyncio.create_task(runtime.launch(pod))
    assert await asyncio.to_thread(entered.wait, 10)
    seen = await runtime.observe(pod.uid)
    release.set()
    await launch
    assert seen.state is ProcessState.PENDING, seen
    assert (await wait_exited(runtime, pod.uid)).reason == "Completed"
    assert await read_logs(runtime, pod.uid) == b"created\n"


async def test_a_new_runtime_adopts_pods_of_an_earlier_one(
    runtime: RayRuntime, ray_cluster: Any
) -> None:
    pod = make_pod().shell("echo before; sleep 1; echo after").build()
    await runtime.launch(pod)
    await wait_state(runtime, pod.uid, ProcessState.RUNNING)
    restarted = RayRuntime(ray_cluster.address, namespace=runtime.namespace)
    assert await restarted.known_pods() == [pod.uid]
    assert (await restarted.observe(pod.uid)).state is ProcessState.RUNNING
    assert await read_logs(restarted, pod.uid, follow=True) == b"before\nafter\n"
    assert (await restarted.observe(pod.uid)).exit_code == 0
    await restarted.remove(pod.uid)
    assert await runtime.known_pods() == []
    assert (await runtime.observe(pod.uid)).state is ProcessState.NOT_FOUND


async def test_pod_bigger_than_any_node_stays_pending(runtime: RayRuntime, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    pod = make_pod().shell(f"touch {marker}").cpu("2").build()
    await runtime.launch(pod)
    seen = await runtime.observe(pod.uid)
    assert (seen.state, seen.reason) == (ProcessState.PENDING, "Unschedulable")
    assert "cpu=2" in seen.message
    await asyncio.sleep(1)
    assert (await runtime.observe(pod.uid)).state is ProcessState.PENDING
    await runtime.stop(pod.uid, grace_seconds=1)
    seen = await runtime.observe(pod.uid)
    assert (seen.state, seen.reason) == (ProcessState.EXITED, "Killed")
    assert not marker.exists()
