"""Pods on the local runtime: memory limits, env from Secrets, and namespace deletion.

Each pod is a real process; the memory limit is enforced by whatever the machine allows
(a cgroup as root, the RSS watchdog otherwise), and either way reports OOMKilled.
"""

from __future__ import annotations

from harness import unique, wait_until
from workloads import PodBuilder, processes_with

from cnai import Client
from cnai.core.errors import NotFound
from cnai.core.kinds import Namespace, Secret
from cnai.core.pods import Pod, PodPhase

WAIT_S = 60.0


def _wait_finished(client: Client, name: str, namespace: str) -> Pod:
    wait_until(
        lambda: client.get(Pod, name, namespace).status.phase.terminal,
        WAIT_S,
        f"pod {name} to finish",
    )
    return client.get(Pod, name, namespace)


def test_pod_over_its_memory_limit_is_oom_killed(client: Client, namespace: str, mark: str) -> None:
    # b"x" * n writes every page (a zero-filled bytearray might never become resident).
    code = """
        import time
        ballast = b"x" * (300 * 2**20)
        time.sleep(30)
    """
    name = unique("oom")
    client.create(PodBuilder(name, namespace).runs(code, mark).memory_limit("64Mi").build())

    pod = _wait_finished(client, name, namespace)

    assert (pod.status.phase, pod.status.reason, pod.status.exit_code) == (
        PodPhase.FAILED,
        "OOMKilled",
        137,
    )
    assert "64" in pod.status.message  # names the limit it exceeded
    assert processes_with(mark) == []


def test_env_from_a_secret_reaches_the_process(client: Client, namespace: str, mark: str) -> None:
    secret = unique("creds")
    client.create(Secret.new(secret, namespace, string_data={"username": "ada"}))
    name = unique("env")
    code = "import os; print('hello', os.environ['DEMO_USER'])"
    pod = (
        PodBuilder(name, namespace)
        .runs(code, mark)
        .env_from_secret("DEMO_USER", secret, "username")
    )
    client.create(pod.build())

    finished = _wait_finished(client, name, namespace)

    assert (finished.status.phase, finished.status.exit_code) == (PodPhase.SUCCEEDED, 0)
    assert b"".join(client.logs(name, namespace)) == b"hello ada\n"


def test_deleting_a_namespace_stops_its_running_pod(client: Client, mark: str) -> None:
    namespace = unique("ns-gone")
    client.create(Namespace.new(namespace))
    name = unique("sleeper")
    client.create(PodBuilder(name, namespace).runs("import time; time.sleep(60)", mark).build())
    wait_until(lambda: processes_with(mark) != [], WAIT_S, "the pod's process to start")
    wait_until(
        lambda: client.get(Pod, name, namespace).status.phase is PodPhase.RUNNING,
        WAIT_S,
        "the pod to be Running",
    )

    client.delete(Namespace, namespace)

    wait_until(lambda: processes_with(mark) == [], WAIT_S, "the pod's process to end")

    def namespace_gone() -> bool:
        try:
            client.get(Namespace, namespace)
        except NotFound:
            return True
        return False

    wait_until(namespace_gone, WAIT_S, "the namespace to be deleted")
