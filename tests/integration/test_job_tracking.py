"""A job's pods log to the job's run with no configuration, with a token that lives and
dies with the job.

Real pods on the real platform: the pod's code calls ``cnai.log_metrics`` and nothing
else; the platform gave it CNAI_SERVER, CNAI_NAMESPACE, CNAI_RUN_ID and CNAI_TOKEN.
"""

from __future__ import annotations

import re

import httpx
from harness import RunningPlatform, unique, wait_until
from workloads import HOLD, JobBuilder, job_pods

from cnai import Client
from cnai.batch.api import Job, JobPhase
from cnai.core.errors import NotFound
from cnai.core.kinds import Secret
from cnai.tracking.sdk import TrackingClient
from cnai.tracking.workloads import token_secret_name

WAIT_S = 60.0

# Logs five points, then reports (never the token itself): the token's public id, and
# what the API answers the token for its own namespace and for another one.
LOGGER = """
    import os, sys, httpx, cnai
    for step in range(5):
        cnai.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    cnai.end_run()
    env = os.environ
    token, api = env["CNAI_TOKEN"], env["CNAI_SERVER"] + "/apis/cnai.io/v1alpha1/namespaces"
    auth = {"Authorization": "Bearer " + token}
    own = httpx.get(f"{api}/{env['CNAI_NAMESPACE']}/pods", headers=auth).status_code
    other = httpx.get(f"{api}/default/pods", headers=auth).status_code
    print(f"token-id={token.split('_')[1]} own={own} other={other} run={env['CNAI_RUN_ID']}")
"""


def _token_ids(platform: RunningPlatform) -> set[str]:
    headers = {"Authorization": f"Bearer {platform.admin_token()}"}
    listed = httpx.get(f"{platform.url}/auth/v1/tokens", headers=headers, timeout=10).json()
    return {t["id"] for t in listed["items"]}


def _report(client: Client, job: Job) -> dict[str, str]:
    pod = job_pods(client, job)[0]
    text = b"".join(client.logs(pod.metadata.name, job.metadata.namespace)).decode()
    found = re.search(r"token-id=(\S+) own=(\d+) other=(\d+) run=(\S+)", text)
    assert found, text
    return dict(zip(("token", "own", "other", "run"), found.groups(), strict=True))


def test_a_jobs_pods_log_to_its_run_with_no_configuration(
    platform: RunningPlatform, client: Client, namespace: str, mark: str
) -> None:
    name = unique("logs")
    client.create(
        JobBuilder(name, namespace).runs(LOGGER, mark).parallelism(2).completions(2).build()
    )
    wait_until(
        lambda: client.get(Job, name, namespace).status.phase.terminal, WAIT_S, f"job {name} ends"
    )
    job = client.get(Job, name, namespace)
    assert job.status.phase is JobPhase.SUCCEEDED

    report = _report(client, job)
    assert report["run"] == job.status.run_id
    # The token is scoped to the job's namespace.
    assert (report["own"], report["other"]) == ("200", "403")
    with TrackingClient(platform.url, platform.admin_token(), namespace) as tracking:
        run = tracking.get_run(job.status.run_id)
        assert run["owner"] == {"kind": "Job", "name": name, "uid": job.metadata.uid}
        assert run["name"] == name
        # Both pods logged to the one run; the platform ended it with the job.
        wait_until(
            lambda: tracking.get_run(job.status.run_id)["status"] == "FINISHED",
            WAIT_S,
            "the run to be ended",
        )
        assert sorted(tracking.history(run["id"], "loss")["steps"]) == sorted([*range(5)] * 2)
    # The job ended: its token Secret is gone and the token revoked.
    wait_until(lambda: report["token"] not in _token_ids(platform), WAIT_S, "token revoked")
    try:
        client.get(Secret, token_secret_name(name), namespace)
        raise AssertionError("the token Secret outlived its job")
    except NotFound:
        pass


def test_deleting_a_running_job_revokes_its_token(
    platform: RunningPlatform, client: Client, namespace: str, mark: str, tmp_path
) -> None:
    code = HOLD.format(release=str(tmp_path / "never"), term=str(tmp_path / "term"))
    name = unique("held")
    client.create(JobBuilder(name, namespace).runs(code, mark).build())
    wait_until(
        lambda: client.get(Job, name, namespace).status.phase is JobPhase.RUNNING,
        WAIT_S,
        f"job {name} to run",
    )
    secret = client.get(Secret, token_secret_name(name), namespace)
    assert secret.type == "cnai.io/token"
    bound = {
        t["id"]
        for t in httpx.get(
            f"{platform.url}/auth/v1/tokens",
            headers={"Authorization": f"Bearer {platform.admin_token()}"},
            timeout=10,
        ).json()["items"]
        if (t.get("secret") or {}).get("name") == secret.metadata.name
    }
    assert len(bound) == 1

    client.delete(Job, name, namespace)

    wait_until(lambda: not bound & _token_ids(platform), WAIT_S, "the job's token revoked")
