"""RayRuntime over the Ray client (``ray://``, as on KubeRay), in a process of its own
(a process holds one Ray connection): a pod with env and a working directory, which
the runtime must upload itself (Ray's own upload hangs over the client). Needs
``ray[client]`` (grpcio): skipped without it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

# The Ray client server now and then fails to start the server of a connection; the
# runtime then connects again (up to three times), which can take a minute.
pytestmark = [pytest.mark.ray, pytest.mark.timeout(200)]

SCRIPT = """
import asyncio, sys, uuid
from cnai.core.runtime import PodLaunch, ProcessState
from cnai.runtimes.ray import RayRuntime

async def main(address, workdir):
    runtime = RayRuntime(address, namespace="client-" + uuid.uuid4().hex[:8])
    assert len(await runtime.nodes()) == 2
    pod = PodLaunch(uid=uuid.uuid4().hex, namespace="default", name="p",
                    command=("/bin/sh", "-c", 'echo "$GREETING"; cat data.txt'),
                    env={"GREETING": "hello"}, working_dir=workdir)
    await runtime.launch(pod)
    for _ in range(300):
        seen = await runtime.observe(pod.uid)
        if seen.state is ProcessState.EXITED:
            break
        await asyncio.sleep(0.1)
    logs = b"".join([c async for c in runtime.logs(pod.uid)])
    await runtime.remove(pod.uid)
    await runtime.close()
    print(seen.reason, logs)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_pod_runs_over_the_ray_client_with_its_working_dir(
    ray_cluster: Any, tmp_path: Path
) -> None:
    pytest.importorskip("grpc", reason="the Ray client needs ray[client]")
    (tmp_path / "data.txt").write_text("from the working dir")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(SCRIPT),
            f"ray://127.0.0.1:{ray_cluster.client_port}",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "Completed b'hello\\nfrom the working dir'"
