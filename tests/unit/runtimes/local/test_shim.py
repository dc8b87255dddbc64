"""The shim with real processes: stop with a grace period, the process group, and
outliving the platform (adoption by a new runtime, surviving the launcher's SIGKILL)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnai.core.runtime import ProcessState
from cnai.runtimes.local import LocalRuntime
from cnai.runtimes.local.layout import PodDir

from .builders import alive, gate, log_has, make_pod, wait_exited, wait_for

pytestmark = pytest.mark.anyio

READY = "print('ready', flush=True)\ntime.sleep(60)\n"
EXITS_ON_SIGTERM = (
    "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n" + READY
)
IGNORES_SIGTERM = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + READY


async def test_a_process_that_exits_on_sigterm_completes(runtime: LocalRuntime) -> None:
    pod = make_pod().python(EXITS_ON_SIGTERM).build()
    await runtime.launch(pod)
    await wait_for(log_has(runtime, pod.uid, "ready"), "the SIGTERM handler")
    await runtime.stop(pod.uid, 30)
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.exit_code, seen.reason) == (0, "Completed")


async def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(
    runtime: LocalRuntime,
) -> None:
    pod = make_pod().python(IGNORES_SIGTERM).build()
    await runtime.launch(pod)
    await wait_for(log_has(runtime, pod.uid, "ready"), "SIGTERM to be ignored")
    await runtime.stop(pod.uid, 0.2)
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.exit_code, seen.reason) == (137, "Killed")
    assert "0.2s grace period" in seen.message


@pytest.mark.parametrize(
    ("ending", "stop"),
    [
        pytest.param("wait", True, id="stopped-pod-takes-its-grandchildren"),
        pytest.param("exit 0", False, id="ended-main-process-takes-its-grandchildren"),
    ],
)
async def test_grandchildren_die_with_the_group(
    runtime: LocalRuntime, tmp_path: Path, ending: str, stop: bool
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    pod = make_pod().shell(
        f"sleep 60 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; {ending}"
    )
    await runtime.launch(pod.build())
    uid = pod.build().uid
    await wait_for(pidfile.exists, "the grandchild")
    if stop:
        await runtime.stop(uid, 0)
    await wait_exited(runtime, uid)
    grandchild = int(pidfile.read_text())
    await wait_for(lambda: not alive(grandchild), "the grandchild to die")


async def test_a_new_runtime_adopts_a_running_pod(pods_root: Path, tmp_path: Path) -> None:
    runs, go = tmp_path / "runs", tmp_path / "go"
    code = f"open({str(runs)!r}, 'a').write('run\\n')\nprint('before', flush=True)\n"
    pod = make_pod().python(f"{code}{gate(go)}print('after')\nraise SystemExit(5)").build()
    first = LocalRuntime(pods_root, memory_enforcement="rss")
    await first.launch(pod)
    await wait_for(log_has(first, pod.uid, "before"), "the pod to start")

    second = LocalRuntime(pods_root, memory_enforcement="rss")  # as after a restart
    assert (await second.observe(pod.uid)).state is ProcessState.RUNNING
    await second.launch(pod)
    stream = second.logs(pod.uid, follow=True)
    assert await asyncio.wait_for(anext(stream), 10) == b"before\n"
    go.touch()
    assert b"".join([c async for c in stream]) == b"after\n"
    seen = await second.observe(pod.uid)
    assert (seen.exit_code, seen.reason) == (5, "Error")
    assert runs.read_text() == "run\n"


async def test_a_pod_that_ended_with_no_runtime_reports_its_true_exit_code(
    pods_root: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    pod = make_pod().python(f"{gate(go)}raise SystemExit(7)").build()
    first = LocalRuntime(pods_root, memory_enforcement="rss")
    await first.launch(pod)
    del first
    go.touch()
    await wait_for((pods_root / pod.uid / "status.json").exists, "the shim to record the exit")
    seen = await LocalRuntime(pods_root, memory_enforcement="rss").observe(pod.uid)
    assert (seen.state, seen.exit_code, seen.reason) == (ProcessState.EXITED, 7, "Error")


LAUNCHER = """
import asyncio, sys, time
from pathlib import Path
from cnai.core.runtime import PodLaunch
from cnai.runtimes.local import LocalRuntime

pod = PodLaunch(uid="survivor", namespace="default", name="survivor",
                command=(sys.executable, "-c", sys.argv[2]))
asyncio.run(LocalRuntime(Path(sys.argv[1]), memory_enforcement="rss").launch(pod))
print("launched", flush=True)
time.sleep(60)
"""


async def test_the_shim_outlives_a_launcher_that_is_interrupted_and_sigkilled(
    pods_root: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    launcher = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LAUNCHER), str(pods_root), gate(go)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert launcher.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(launcher.stdout.readline), 20)
        assert line == b"launched\n"
        os.killpg(launcher.pid, signal.SIGINT)  # a Ctrl-C to the platform's group
        launcher.kill()
    finally:
        launcher.kill()
        launcher.wait()
        launcher.stdout.close()
    runtime = LocalRuntime(pods_root, memory_enforcement="rss")
    assert (await runtime.observe("survivor")).state is ProcessState.RUNNING
    go.touch()
    seen = await wait_exited(runtime, "survivor")
    assert (seen.exit_code, seen.reason) == (0, "Completed")


async def test_a_lost_shim_leaves_the_process_running_and_stop_still_ends_it(
    runtime: LocalRuntime,
) -> None:
    pod = make_pod().python("import time\n" + READY).build()
    await runtime.launch(pod)
    await wait_for(log_has(runtime, pod.uid, "ready"), "the pod to start")
    files = PodDir(runtime.root / pod.uid)
    os.kill(int(files.shim_pid.read_text()), signal.SIGKILL)
    await wait_for(lambda: not files.shim_alive(), "the shim to die")
    assert (await runtime.observe(pod.uid)).state is ProcessState.RUNNING
    await runtime.stop(pod.uid, 0)
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.exit_code, seen.reason) == (None, "Unknown")
    assert "supervisor was lost" in seen.message


UVLOOP_LAUNCHER = """
import socket, sys, uvloop
from pathlib import Path
from cnai.core.runtime import PodLaunch
from cnai.runtimes.local import LocalRuntime

# As `cnai up` does: an inheritable listening socket, and the runtime on uvloop.
listener = socket.create_server(("127.0.0.1", 0))
listener.set_inheritable(True)
pod = PodLaunch(uid="holder", namespace="default", name="holder",
                command=(sys.executable, "-c", sys.argv[2]))
uvloop.run(LocalRuntime(Path(sys.argv[1]), memory_enforcement="rss").launch(pod))
print(listener.getsockname()[1], flush=True)
"""


async def test_the_shim_keeps_no_descriptor_of_the_platform_that_started_it(
    pods_root: Path, tmp_path: Path
) -> None:
    # uvloop's spawn ignores close_fds: a shim that kept the platform's listening socket
    # kept its port bound after the platform died, so a restart could not listen.
    go = tmp_path / "go"
    launcher = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(UVLOOP_LAUNCHER), str(pods_root), gate(go)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    port = int(launcher.stdout)
    runtime = LocalRuntime(pods_root, memory_enforcement="rss")
    assert (await runtime.observe("holder")).state is ProcessState.RUNNING
    shim_pid = PodDir(pods_root / "holder").read_pid(PodDir(pods_root / "holder").shim_pid)
    assert shim_pid is not None
    held = [os.readlink(fd) for fd in Path(f"/proc/{shim_pid}/fd").iterdir()]
    assert not [target for target in held if target.startswith("socket:")]
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again
    go.touch()
    await wait_exited(runtime, "holder")


async def test_python_by_name_is_the_platforms_interpreter(runtime: LocalRuntime) -> None:
    """A pod's ``python`` (and ``torchrun``, ``cnai``) is the platform's environment's,
    as if it were activated, whatever PATH the platform was started with."""
    pod = make_pod().shell("python -c 'import sys; print(sys.prefix)'").build()
    await runtime.launch(pod)
    seen = await wait_exited(runtime, pod.uid)
    assert seen.exit_code == 0
    await wait_for(log_has(runtime, pod.uid, sys.prefix), "the interpreter's prefix")
