"""The dashboard in a real browser against a real platform: login, overview, jobs, job
detail with a live log, and live updates through the watch API.

One platform and one headless Chromium serve the module. Each check compares what the
page shows with what the API returns for the same objects. Tests run in file order:
the last one releases the job that holds quota for the overview's checks.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import RunningPlatform, unique, wait_until
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from workloads import HOLD, JobBuilder, marker, processes_with, python

from cnai import Client
from cnai.batch.api import Job, JobPhase
from cnai.core.kinds import Event, Namespace
from cnai.core.pods import Node, Pod
from cnai.core.quantity import parse_quantity
from cnai.scheduling.api import ClusterQueue
from cnai.training.api import TrainJob, TrainJobPhase

from .pages import WAIT_S, cell, css, go, live, sign_in, wait

API = "/apis/cnai.io/v1alpha1"


@dataclass
class World:
    """What the module's setup created."""

    namespace: str
    cluster_queue: str
    hello: str  # a job that printed HELLO and succeeded
    holder: str  # a job whose pod holds 1 cpu until ``release`` exists
    release: Path
    mark: str
    tmp: Path


HELLO = "hello from the dashboard's test pod"


# -- fixtures ------------------------------------------------------------------------


def _job(name: str, ns: str, queue: str, code: str, mark: str, cpu: str | None) -> dict[str, Any]:
    builder = JobBuilder(name, ns).runs(code, mark)
    builder.spec["queue"] = queue
    if cpu:
        builder.pod.spec["resources"] = {"requests": {"cpu": cpu}}
    return builder.build()


def _phase(client: Client, name: str, ns: str) -> JobPhase:
    return client.get(Job, name, ns).status.phase


@pytest.fixture(scope="module")
def world(client: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("ui-world")
    ns, cq, lq = unique("ui"), unique("team"), "team-queue"
    mark = marker()
    client.create(Namespace.new(ns))
    flavor = {
        "name": "default",
        "resources": [
            {"name": "cpu", "nominalQuota": "2"},
            {"name": "memory", "nominalQuota": "4Gi"},
        ],
    }
    group = {"coveredResources": ["cpu", "memory"], "flavors": [flavor]}
    client.create(
        {"apiVersion": "cnai.io/v1alpha1", "kind": "ClusterQueue", "metadata": {"name": cq}}
        | {"spec": {"resourceGroups": [group]}}
    )
    client.create(
        {"apiVersion": "cnai.io/v1alpha1", "kind": "LocalQueue"}
        | {"metadata": {"name": lq, "namespace": ns}, "spec": {"clusterQueue": cq}}
    )
    w = World(ns, cq, "hello", "holder", tmp / "release", mark, tmp)
    hold = HOLD.format(release=str(w.release), term=str(tmp / "term"))
    client.create(_job(w.hello, ns, lq, f"print({HELLO!r})", mark, "1"))
    client.create(_job(w.holder, ns, lq, hold, mark, "1"))
    wait_until(lambda: _phase(client, w.hello, ns) is JobPhase.SUCCEEDED, WAIT_S, "hello")
    wait_until(lambda: _running_pods(client, w.holder, ns) == 1, WAIT_S, "holder to run")
    yield w
    w.release.touch()
    for pid in processes_with(mark):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _running_pods(client: Client, job: str, ns: str) -> int:
    pods = client.list(Pod, ns, label_selector=f"cnai.io/job-name={job}").items
    return sum(p.status.phase == "Running" for p in pods)


@pytest.fixture
def admin(browser: WebDriver, platform: RunningPlatform) -> WebDriver:
    """The browser, signed in with the admin token."""
    sign_in(browser, platform, platform.admin_token())
    return browser


# -- browser helpers -----------------------------------------------------------------


def amount(value: object) -> str:
    """A cpu amount as the page writes it: "1", "0.5"."""
    d = value if isinstance(value, Decimal) else parse_quantity(value)  # type: ignore[arg-type]
    return str(int(d)) if d == d.to_integral_value() else f"{d.normalize()}"


def newest_events(client: Client) -> list[Event]:
    """Events newest first, ordered as the page orders them."""

    def key(e: Event) -> tuple[float, int]:
        when = e.last_timestamp or e.first_timestamp or e.metadata.creation_timestamp
        return (when.timestamp() if when else 0.0, int(e.metadata.resource_version or 0))

    return sorted(client.list(Event, all_namespaces=True).items, key=key, reverse=True)


# -- tests ---------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_page_and_static_files_are_served_without_a_token_with_cache_headers(
    platform: RunningPlatform,
) -> None:
    index = httpx.get(f"{platform.url}/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "no-cache"
    match = re.search(r'src="(/ui/[0-9a-f]{12})/app\.js"', index.text)
    assert match, index.text
    assets = match.group(1)
    for path, kind in [("app.js", "text/javascript"), ("style.css", "text/css")]:
        versioned = httpx.get(f"{platform.url}{assets}/{path}")
        assert versioned.status_code == 200
        assert versioned.headers["content-type"].startswith(kind)
        assert "immutable" in versioned.headers["cache-control"]
        plain = httpx.get(f"{platform.url}/ui/{path}")
        assert (plain.status_code, plain.headers["cache-control"]) == (200, "no-cache")
        assert plain.content == versioned.content
    vendored = httpx.get(f"{platform.url}{assets}/vendor/preact-11.2.0/preact.js")
    assert vendored.status_code == 200
    assert "%ASSETS%" not in index.text
    # The data still needs a token.
    assert httpx.get(f"{platform.url}{API}/jobs").status_code == 401
    assert httpx.get(f"{platform.url}/ui/no-such-file.js").status_code == 404


@pytest.mark.timeout(60)
def test_login_refuses_a_wrong_token_with_the_apis_message_then_signs_in(
    browser: WebDriver, platform: RunningPlatform, shot: Callable[[str], Path]
) -> None:
    go(browser, platform, "/")
    wait(browser, "the login page", lambda d: css(d, "#login-page"))
    css(browser, "#token").send_keys("not-a-token")
    css(browser, "#login-submit").click()

    refused = httpx.get(
        f"{platform.url}/auth/v1/whoami", headers={"Authorization": "Bearer not-a-token"}
    )
    assert refused.status_code == 401
    error = wait(browser, "the login error", lambda d: css(d, "#login-error [role=alert]"))
    assert refused.json()["message"] in error.text
    assert browser.find_elements(By.ID, "identity") == []
    shot("login-refused")

    token = platform.admin_token()
    field = css(browser, "#token")
    field.clear()
    field.send_keys(token)
    css(browser, "#login-submit").click()
    who = httpx.get(f"{platform.url}/auth/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    identity = wait(browser, "the identity", lambda d: css(d, "#identity"))
    assert identity.text == f"token {who.json()['tokenId']} · admin"
    # Stored for the tab (sessionStorage), so a reload of a deep link stays signed in.
    go(browser, platform, "/jobs")
    browser.refresh()
    wait(browser, "the jobs page after a reload", lambda d: css(d, "#jobs-page"))
    assert browser.execute_script("return sessionStorage.getItem('cnai.token')") == token

    css(browser, "#logout").click()
    wait(browser, "the login page after logout", lambda d: css(d, "#login-page"))
    assert browser.execute_script("return sessionStorage.getItem('cnai.token')") is None


@pytest.mark.timeout(60)
def test_overview_shows_queues_nodes_and_events_as_the_api_reports_them(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    probe = client.create(
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "Event",
            "metadata": {"name": unique("probe"), "namespace": world.namespace},
            "involvedObject": {"kind": "Job", "name": world.hello, "namespace": world.namespace},
            "reason": "Probe",
            "message": '<b id="injected">markup must show as text</b>',
        }
    )
    go(admin, platform, "/")
    for section in ("clusterqueues", "nodes", "events"):
        live(admin, section)

    # ClusterQueue: the holder's 1 cpu of 2, as the API's status says.
    cq = client.get(ClusterQueue, world.cluster_queue)
    cpu = next(r for r in cq.status.flavors_usage[0].resources if r.name == "cpu")
    expected = f"{amount(cpu.used)} / {amount(cpu.nominal)}"
    assert expected == "1 / 2"
    row = css(admin, f'#clusterqueues tr[data-key="{world.cluster_queue}"]')
    usage = lambda d: css(row, '.usage[data-resource="cpu"] .usage-text').text  # noqa: E731
    wait(admin, f"cpu usage {expected}", lambda d: usage(d) == expected)
    assert cell(row, "Admitted").text == str(cq.status.admitted_workloads)

    # Node: what its unfinished pods request, out of its allocatable.
    node = client.list(Node).items[0]
    pods = client.list(Pod, all_namespaces=True).items
    held = sum(
        (
            parse_quantity(p.spec.resources.requests.get("cpu", 0))
            for p in pods
            if p.spec.node_name == node.metadata.name and not p.status.phase.terminal
        ),
        Decimal(0),
    )
    node_text = f"{amount(held)} / {amount(node.status.allocatable['cpu'])}"
    node_row = css(admin, f'#nodes tr[data-key="{node.metadata.name}"]')
    wait(
        admin,
        f"node cpu {node_text}",
        lambda d: css(node_row, '.usage[data-resource="cpu"] .usage-text').text == node_text,
    )

    # Events: the first row is the API's newest event.
    def first_is_newest(d: WebDriver) -> bool:
        first = css(d, "#events-table tbody tr")
        return first.get_attribute("data-key") == newest_events(client)[0].metadata.uid

    wait(admin, "the newest event first", first_is_newest)
    shown = css(admin, f'#events-table tr[data-key="{probe.metadata.uid}"]')
    assert cell(shown, "Message").text == '<b id="injected">markup must show as text</b>'
    assert cell(shown, "Reason").text == "Probe"
    assert admin.find_elements(By.ID, "injected") == []
    shot("overview")


@pytest.mark.timeout(60)
def test_jobs_list_shows_each_job_with_the_status_the_api_reports(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    go(admin, platform, "/jobs")
    live(admin, "jobs")
    for job in client.list(Job, world.namespace).items:
        row = wait(
            admin,
            f"job {job.metadata.name}",
            lambda d, j=job: css(
                d, f'#jobs-table tr[data-key="{world.namespace}/{j.metadata.name}"]'
            ),
        )
        status = css(cell(row, "Status"), "[data-status]")
        assert status.get_attribute("data-status") == job.status.phase.value
        assert cell(row, "Namespace").text == world.namespace
        assert cell(row, "Completions").text == job.status.completions_text
    shot("jobs")


@pytest.mark.timeout(60)
def test_job_detail_shows_its_pods_events_and_the_pods_log(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    job = client.get(Job, world.hello, world.namespace)
    pods = client.list(Pod, world.namespace, label_selector=f"cnai.io/job-name={world.hello}").items
    go(admin, platform, f"/jobs/{world.namespace}/{world.hello}")
    for section in ("job", "pods", "events"):
        live(admin, section)

    summary = css(admin, '#job-summary dd[data-field="Status"] [data-status]')
    assert summary.get_attribute("data-status") == job.status.phase.value == "Succeeded"
    for pod in pods:
        row = css(admin, f'#pods-table tr[data-key="{pod.metadata.name}"]')
        assert cell(row, "Phase").text == pod.status.phase.value
        assert cell(row, "Exit code").text == str(pod.status.exit_code)
    uids = {job.metadata.uid, *(p.metadata.uid for p in pods)}
    api_events = {
        e.metadata.uid
        for e in client.list(Event, world.namespace).items
        if e.involved_object.uid in uids
    }
    assert len(api_events) >= 3  # the job's SuccessfulCreate and Completed, the pod's Started...

    def shown_events(d: WebDriver) -> set[str]:
        rows = d.find_elements(By.CSS_SELECTOR, "#job-events-table tbody tr")
        return {r.get_attribute("data-key") or "" for r in rows}

    wait(admin, "the job's and pods' events", lambda d: api_events <= shown_events(d))
    wait(admin, "the pod's log line", lambda d: HELLO in css(d, "#log-text").text)
    shot("job-detail")


@pytest.mark.timeout(60)
def test_log_of_a_running_pod_streams_new_lines_without_reload(
    admin: WebDriver, platform: RunningPlatform, client: Client, world: World
) -> None:
    gate = world.tmp / "ticker-release"
    code = f"""
        import os, time
        print("first line", flush=True)
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.05)
        print("second line", flush=True)
    """
    client.create(_job("ticker", world.namespace, "team-queue", code, world.mark, None))
    go(admin, platform, f"/jobs/{world.namespace}/ticker")
    wait(admin, "the first line", lambda d: "first line" in css(d, "#log-text").text)
    admin.execute_script("window.cnaiNoReload = true")
    assert "second line" not in css(admin, "#log-text").text

    gate.touch()
    wait(admin, "the second line", lambda d: "second line" in css(d, "#log-text").text)
    row = css(admin, '#pods-table tr[data-key="ticker-0"]')
    wait(admin, "the pod to succeed", lambda d: cell(row, "Phase").text == "Succeeded")
    assert css(admin, "#log-text").text.count("first line") == 1
    assert admin.execute_script("return window.cnaiNoReload") is True


# Fails at its first start, trains at its second: one gang restart.
FLAKY = """
    import os, sys
    if os.environ["TORCHELASTIC_RESTART_COUNT"] == "0":
        print("first start fails", flush=True)
        sys.exit(3)
    print("second start trains", flush=True)
"""


@pytest.mark.timeout(90)
def test_trainjob_pages_show_its_restarts_generations_events_and_log(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    name, ns = "flaky", world.namespace
    trainer = {
        "numNodes": 1,
        "command": python(FLAKY, world.mark),
        "resourcesPerNode": {"requests": {"cpu": "500m"}},
        "terminationGracePeriodSeconds": 5,
    }
    client.create(
        {"apiVersion": "cnai.io/v1alpha1", "kind": "TrainJob"}
        | {"metadata": {"name": name, "namespace": ns}}
        | {"spec": {"queue": "team-queue", "backoffLimit": 2, "trainer": trainer}}
    )
    done = (TrainJobPhase.SUCCEEDED, TrainJobPhase.FAILED)
    wait_until(lambda: client.get(TrainJob, name, ns).status.phase in done, 60, "the TrainJob")
    job = client.get(TrainJob, name, ns)
    assert (job.status.phase, job.status.restarts) == (TrainJobPhase.SUCCEEDED, 1)

    go(admin, platform, "/trainjobs")
    live(admin, "trainjobs")
    row = css(admin, f'#trainjobs-table tr[data-key="{ns}/{name}"]')
    assert css(row, "[data-status]").get_attribute("data-status") == "Succeeded"
    assert cell(row, "Restarts").text == str(job.status.restarts)
    shot("trainjobs")

    go(admin, platform, f"/trainjobs/{ns}/{name}")
    for section in ("trainjob", "trainjob-pods", "trainjob-events"):
        live(admin, section)
    assert css(admin, '#trainjob-summary dd[data-field="Restarts"]').text == "1"
    pods = client.list(Pod, ns, label_selector=f"cnai.io/trainjob-name={name}").items
    assert pods
    for pod in pods:
        shown = css(admin, f'#trainjob-pods-table tr[data-key="{pod.metadata.name}"]')
        generation = pod.metadata.labels["cnai.io/gang-generation"]
        assert cell(shown, "Generation").text == generation
        assert cell(shown, "Exit code").text == str(pod.status.exit_code)
    restarting = {
        e.metadata.uid
        for e in client.list(Event, ns).items
        if e.involved_object.uid == job.metadata.uid and e.reason == "Restarting"
    }
    assert restarting

    def shown_events(d: WebDriver) -> set[str]:
        rows = d.find_elements(By.CSS_SELECTOR, "#trainjob-events-table tbody tr")
        return {r.get_attribute("data-key") or "" for r in rows}

    wait(admin, "the Restarting event", lambda d: restarting <= shown_events(d))
    # The newest generation's pod is shown first, with its log.
    wait(
        admin, "the second start's log", lambda d: "second start trains" in css(d, "#log-text").text
    )
    shot("trainjob-detail")


@pytest.mark.timeout(60)
def test_failed_api_call_shows_the_apis_message(
    browser: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    token = str(client.create_token(world.namespace, "dashboard test")["token"])
    sign_in(browser, platform, token)
    refused = httpx.get(
        f"{platform.url}{API}/clusterqueues", headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 403

    go(browser, platform, "/")
    error = wait(browser, "the queues' error", lambda d: css(d, "#clusterqueues [role=alert]"))
    assert refused.json()["message"] in error.text
    assert "403" in error.text
    # Its own namespace it may read: the jobs page lists that namespace's jobs.
    go(browser, platform, "/jobs")
    live(browser, "jobs")
    css(browser, f'#jobs-table tr[data-key="{world.namespace}/{world.hello}"]')
    shot("namespace-token")


@pytest.mark.timeout(60)
def test_new_job_and_freed_quota_appear_without_reload(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    go(admin, platform, "/jobs")
    live(admin, "jobs")
    css(admin, f'#jobs-table tr[data-key="{world.namespace}/{world.hello}"]')
    admin.execute_script("window.cnaiNoReload = true")
    assert admin.find_elements(By.CSS_SELECTOR, f'tr[data-key="{world.namespace}/second"]') == []

    client.create(_job("second", world.namespace, "team-queue", "print('2')", world.mark, None))
    row = wait(
        admin,
        "the new job",
        lambda d: css(d, f'#jobs-table tr[data-key="{world.namespace}/second"]'),
    )

    def status_matches_api(d: WebDriver) -> bool:
        shown = css(cell(row, "Status"), "[data-status]").get_attribute("data-status")
        return shown == "Succeeded" == _phase(client, "second", world.namespace)

    wait(admin, "the new job's final status", status_matches_api)
    shot("jobs-live")
    assert admin.execute_script("return window.cnaiNoReload") is True

    # Overview: releasing the holder frees its cpu in the ClusterQueue.
    go(admin, platform, "/")
    live(admin, "clusterqueues")
    queue = f'#clusterqueues tr[data-key="{world.cluster_queue}"]'
    usage = f'{queue} .usage[data-resource="cpu"] .usage-text'
    wait(admin, "the holder's cpu in use", lambda d: css(d, usage).text == "1 / 2")
    admin.execute_script("window.cnaiNoReload = true")
    world.release.touch()
    wait(admin, "the freed cpu", lambda d: css(d, usage).text == "0 / 2")
    cq = client.get(ClusterQueue, world.cluster_queue)
    assert next(r.used for r in cq.status.flavors_usage[0].resources if r.name == "cpu") == "0"
    assert admin.execute_script("return window.cnaiNoReload") is True
    shot("overview-live")
