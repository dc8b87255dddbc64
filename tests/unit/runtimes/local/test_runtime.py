"""LocalRuntime with real processes: exit codes to reasons, env, working dir, logs,
start errors, idempotent launch, remove, GPU pinning."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cnai.core.runtime import ProcessState
from cnai.runtimes.local import LocalRuntime

from .builders import gate, log_has, make_pod, read_logs, wait_exited, wait_for

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("script", "code", "reason"),
    [
        pytest.param("exit 0", 0, "Completed", id="exit-0-is-completed"),
        pytest.param("exit 3", 3, "Error", id="exit-3-is-error-with-its-code"),
        pytest.param("kill -USR1 $$", 138, "Error", id="death-by-signal-is-128-plus-signum"),
    ],
)
async def test_exit_status_becomes_code_and_reason(
    runtime: LocalRuntime, script: str, code: int, reason: str
) -> None:
    pod = make_pod().shell(script).build()
    await runtime.launch(pod)
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.state, seen.exit_code, seen.reason) == (ProcessState.EXITED, code, reason)
    assert seen.started_at is not None
    assert seen.finished_at is not None


async def test_env_and_working_dir_reach_the_process(runtime: LocalRuntime, tmp_path: Path) -> None:
    pod = make_pod().shell('echo "$GREETING from $(pwd)"').env(GREETING="hello")
    await runtime.launch(pod.workdir(tmp_path).build())
    uid = pod.build().uid
    await wait_exited(runtime, uid)
    assert await read_logs(runtime, uid) == f"hello from {tmp_path}\n".encode()


async def test_platform_settings_and_env_values_stay_out_of_the_pod(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNAI_TOKEN", "platform-secret")
    pod = make_pod().shell('echo "token=${CNAI_TOKEN:-unset}"').env(PASSWORD="pod-secret")
    await runtime.launch(pod.build())
    uid = pod.build().uid
    await wait_exited(runtime, uid)
    assert await read_logs(runtime, uid) == b"token=unset\n"
    spec = json.loads((runtime.root / uid / "spec.json").read_text())
    assert spec["envNames"] == ["PASSWORD"]
    assert "pod-secret" not in (runtime.root / uid / "spec.json").read_text()


async def test_stdout_and_stderr_are_captured_in_order(runtime: LocalRuntime) -> None:
    pod = make_pod().shell("echo out; echo err >&2; echo out2").build()
    await runtime.launch(pod)
    await wait_exited(runtime, pod.uid)
    assert await read_logs(runtime, pod.uid) == b"out\nerr\nout2\n"
    assert [c async for c in runtime.logs(pod.uid, offset=4)] == [b"err\nout2\n"]


async def test_following_logs_streams_while_running_and_ends_after_exit(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    pod = make_pod().python(f"print('first', flush=True)\n{gate(go)}print('second')").build()
    await runtime.launch(pod)
    stream = runtime.logs(pod.uid, follow=True)
    # The pod cannot end before `go` exists, so this came while it ran. print() writes
    # the text and the newline separately, so they may arrive as two chunks.
    first = b""
    while not first.endswith(b"\n"):
        first += await asyncio.wait_for(anext(stream), 10)
    assert first == b"first\n"
    assert (await runtime.observe(pod.uid)).state is ProcessState.RUNNING
    go.touch()
    rest = b"".join([c async for c in stream])
    assert rest == b"second\n"
    assert (await runtime.observe(pod.uid)).reason == "Completed"


@pytest.mark.parametrize(
    ("command", "workdir", "code", "words"),
    [
        pytest.param(
            ("no-such-program-cnai",), None, 127, "no-such-program-cnai", id="unknown-executable"
        ),
        pytest.param(("{tmp}/data.txt",), None, 126, "not executable", id="file-not-executable"),
        pytest.param(("true",), "/no/such/dir", 128, "/no/such/dir", id="missing-working-dir"),
    ],
)
async def test_a_pod_that_cannot_start_ends_with_start_error(
    runtime: LocalRuntime,
    tmp_path: Path,
    command: tuple[str, ...],
    workdir: str | None,
    code: int,
    words: str,
) -> None:
    (tmp_path / "data.txt").write_text("not a program\n")
    pod = make_pod().command(*(c.format(tmp=tmp_path) for c in command))
    if workdir:
        pod.workdir(workdir)
    await runtime.launch(pod.build())
    seen = await runtime.observe(pod.build().uid)
    assert (seen.state, seen.exit_code, seen.reason) == (ProcessState.EXITED, code, "StartError"), (
        seen
    )
    assert words in seen.message, seen.message


async def test_launching_a_uid_twice_starts_it_once(runtime: LocalRuntime, tmp_path: Path) -> None:
    runs, go = tmp_path / "runs", tmp_path / "go"
    pod = make_pod().python(f"open({str(runs)!r}, 'a').write('run\\n')\n{gate(go)}").build()
    await asyncio.gather(runtime.launch(pod), runtime.launch(pod))
    await runtime.launch(pod)
    go.touch()
    await wait_exited(runtime, pod.uid)
    await runtime.launch(pod)  # ended: still not started again
    assert (await wait_exited(runtime, pod.uid)).reason == "Completed"
    assert runs.read_text() == "run\n"


async def test_a_pod_it_never_saw_is_not_found_and_harmless(runtime: LocalRuntime) -> None:
    assert (await runtime.observe("nope")).state is ProcessState.NOT_FOUND
    assert (await runtime.observe("../etc")).state is ProcessState.NOT_FOUND
    assert await read_logs(runtime, "nope", follow=True) == b""
    await runtime.stop("nope", 1)
    await runtime.remove("nope")
    assert await runtime.known_pods() == []


async def test_remove_stops_a_running_pod_and_deletes_its_dir(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    pod = make_pod().python("import time; print('up', flush=True); time.sleep(60)").build()
    await runtime.launch(pod)
    await wait_for(log_has(runtime, pod.uid, "up"), "the pod to start")
    assert await runtime.known_pods() == [pod.uid]
    await runtime.remove(pod.uid)
    assert not (runtime.root / pod.uid).exists()
    assert await runtime.known_pods() == []
    assert (await runtime.observe(pod.uid)).state is ProcessState.NOT_FOUND


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        pytest.param((), b"[]\n", id="no-gpus-hides-all"),
        pytest.param((0, 1), b"[0,1]\n", id="gpus-0-and-1-pinned"),
    ],
)
async def test_cuda_visible_devices_pins_the_pods_gpus(
    runtime: LocalRuntime, gpus: tuple[int, ...], expected: bytes
) -> None:
    pod = make_pod().shell('echo "[$CUDA_VISIBLE_DEVICES]"').env(CUDA_VISIBLE_DEVICES="7")
    await runtime.launch(pod.gpus(*gpus).build())
    uid = pod.build().uid
    await wait_exited(runtime, uid)
    assert await read_logs(runtime, uid) == expected
