"""The dashboard's experiments, models and inference-services pages in a real browser
against a real platform.

The module's world is one of each, made together so that they start in parallel: an
Experiment of three trials of the torch-free objective (``tests/integration/trainers``),
a registered model with two versions and an alias (``champion`` -> v2, the version the
service serves), and an InferenceService serving ``models:/NAME@champion``, a tiny
scikit-learn classifier. Each check compares the page with the API. The service is
deleted at the end and its replica waited for: pods outlive the platform.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from harness import RunningPlatform, unique, wait_until
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sklearn.linear_model import LogisticRegression

from cnai import Client
from cnai.core.errors import NotFound
from cnai.core.kinds import Event, Namespace
from cnai.core.pods import Pod
from cnai.serving.api import SERVICE_LABEL, InferenceService, InferenceServicePhase
from cnai.tracking.api import Model, ModelVersion
from cnai.tracking.sdk import TrackingClient
from cnai.tuning.api import EXPERIMENT_LABEL, Experiment, Trial

from .pages import cell, css, go, live, sign_in, wait

API = "/apis/cnai.io/v1alpha1"
SETUP_S = 90.0
REPO = Path(__file__).resolve().parents[2]
OBJECTIVE = str(REPO / "tests" / "integration" / "trainers" / "objective.py")
ROW = [5.1, 3.5, 1.4, 0.2]


@dataclass
class World:
    namespace: str
    experiment: str
    model: str
    service: str
    run_id: str


# -- fixtures ------------------------------------------------------------------------


def experiment(name: str, ns: str) -> dict[str, Any]:
    space = [
        {"name": "x", "type": "float", "min": -4, "max": 6},
        {"name": "shape", "type": "categorical", "values": ["good", "bad"]},
    ]
    args = [a for p in space for a in (f"--{p['name']}", f"${{trial.params.{p['name']}}}")]
    trainer = {
        "command": [sys.executable, OBJECTIVE, *args],
        "resourcesPerNode": {"requests": {"cpu": "250m"}},
        "terminationGracePeriodSeconds": 2,
    }
    spec = {
        "parameters": space,
        "objective": {"metric": "loss", "goal": "minimize"},
        "algorithm": {"name": "random", "seed": 7},
        "parallelTrials": 3,
        "maxTrials": 3,
        "trialTemplate": {"trainer": trainer, "backoffLimit": 0},
    }
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def register_model(platform: RunningPlatform, ns: str, name: str, tmp: Path) -> str:
    """Two versions of a tiny iris classifier, from one run; champion -> v2."""
    x = np.array([ROW, [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]] * 4)
    y = np.array([0, 2, 1] * 4)
    path = tmp / "iris.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    signature = {
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "output-0", "datatype": "INT64", "shape": [-1]}],
    }
    with TrackingClient(platform.url, platform.admin_token(), ns) as tracking:
        run_id = str(tracking.create_run(name="fit-iris")["id"])
        tracking.register_model(name, f"file://{path}", runId=run_id, format="sklearn")
        tracking.register_model(
            name,
            f"file://{path}",
            runId=run_id,
            format="sklearn",
            signature=signature,
            metrics={"accuracy": 0.97},
            description="<i>refit</i> on more rows",
            aliases=["champion"],
        )
    return run_id


@pytest.fixture(scope="module")
def world(
    client: Client, platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("ui-serving")
    ns = unique("ui-serving")
    client.create(Namespace.new(ns))
    w = World(ns, "search", "iris", "iris-svc", "")
    client.create(experiment(w.experiment, ns))
    w.run_id = register_model(platform, ns, w.model, tmp)
    isvc = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": w.service, "namespace": ns},
        "spec": {"predictor": {"model": f"models:/{w.model}@champion"}},
    }
    client.create(isvc)
    try:
        wait_until(
            lambda: client.get(Experiment, w.experiment, ns).status.phase.terminal,
            SETUP_S,
            "the experiment to end",
        )
        wait_until(
            lambda: (
                client.get(InferenceService, w.service, ns).status.phase
                is InferenceServicePhase.READY
            ),
            SETUP_S,
            "the service to be ready",
        )
        yield w
    finally:
        for name in [s.metadata.name for s in client.list(InferenceService, ns).items]:
            with contextlib.suppress(NotFound):
                client.delete(InferenceService, name, ns)
        with contextlib.suppress(NotFound):
            client.delete(Experiment, w.experiment, ns)
        wait_until(
            lambda: not client.list(Pod, ns).items,
            30,
            "the replicas and trial pods to stop",
        )


@pytest.fixture
def admin(browser: WebDriver, platform: RunningPlatform) -> WebDriver:
    sign_in(browser, platform, platform.admin_token())
    return browser


# -- browser helpers (as tests/e2e/test_ui.py's) -------------------------------------


def row_keys(driver: WebDriver, table: str) -> set[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    return {r.get_attribute("data-key") or "" for r in rows}


def number(text: str) -> float:
    return float(text.strip())


def events_about(client: Client, ns: str, uids: set[str]) -> set[str]:
    return {
        e.metadata.uid
        for e in client.list(Event, ns).items
        if e.involved_object.uid in uids and e.metadata.uid
    }


def probe_event(client: Client, ns: str, kind: str, name: str, uid: str) -> Event:
    """An event with markup in its message, which the page must show as text."""
    return client.create(
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "Event",
            "metadata": {"name": unique("probe"), "namespace": ns},
            "involvedObject": {"kind": kind, "name": name, "namespace": ns, "uid": uid},
            "reason": "Probe",
            "message": '<b id="injected">markup must show as text</b>',
        }
    )


# -- tests ---------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_experiments_list_shows_progress_algorithm_and_best_value(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    exp = client.get(Experiment, world.experiment, world.namespace)
    assert exp.status.best_trial is not None
    go(admin, platform, "/experiments")
    live(admin, "experiments")
    row = wait(
        admin,
        "the experiment's row",
        lambda d: css(d, f'#experiments-table tr[data-key="{world.namespace}/{world.experiment}"]'),
    )
    status = css(cell(row, "Status"), "[data-status]")
    assert status.get_attribute("data-status") == exp.status.phase.value == "Succeeded"
    assert cell(row, "Algorithm").text == "random"
    assert cell(row, "Trials").text == exp.status.progress == "3/3"
    best = exp.status.best_trial.values[0]
    assert number(cell(row, "Best").text) == pytest.approx(best, rel=5e-3)
    assert cell(row, "Objective").text == "loss (minimize)"
    css(row, "a").click()
    wait(admin, "the experiment's page", lambda d: css(d, "#experiment-page"))
    shot("experiments")


@pytest.mark.timeout(60)
def test_experiment_page_shows_trials_best_trial_plots_and_events(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    ns = world.namespace
    exp = client.get(Experiment, world.experiment, ns)
    trials = client.list(Trial, ns, label_selector=f"{EXPERIMENT_LABEL}={world.experiment}").items
    assert exp.status.best_trial is not None
    best = exp.status.best_trial.name
    assert len(trials) == 3
    go(admin, platform, f"/experiments/{ns}/{world.experiment}")
    for section in ("experiment", "trials", "events"):
        live(admin, section)

    summary = css(admin, '#experiment-summary dd[data-field="Status"] [data-status]')
    assert summary.get_attribute("data-status") == "Succeeded"
    best_field = css(admin, '#experiment-summary dd[data-field="Best trial"]').text
    assert best_field.startswith(f"{best} (")
    wait(
        admin,
        "every trial",
        lambda d: row_keys(d, "trials-table") == {t.metadata.name for t in trials},
    )
    for trial in trials:
        row = css(admin, f'#trials-table tr[data-key="{trial.metadata.name}"]')
        assert cell(row, "#").text == str(trial.spec.number)
        assert cell(row, "shape").text == trial.spec.params["shape"]
        assert number(cell(row, "x").text) == pytest.approx(trial.spec.params["x"], rel=5e-3)
        assert number(cell(row, "loss").text) == pytest.approx(trial.status.values[0], rel=5e-3)
        phase = css(cell(row, "Status"), "[data-status]").get_attribute("data-status")
        assert phase == trial.status.phase.value
        assert cell(row, "Pruned").text.startswith("yes") == (phase == "Pruned")
        run = css(cell(row, "Run"), "a").get_attribute("href") or ""
        assert trial.status.run_id
        assert run.endswith(f"#/runs/{ns}/{trial.status.run_id}")
        is_best = "best" in (row.get_attribute("class") or "").split()
        assert is_best == (trial.metadata.name == best)

    # One scatter per parameter, a point per trial with a value, the best one marked.
    with_values = [t for t in trials if t.status.values]
    for param in ("x", "shape"):
        plot = css(admin, f"#plot-{param}")
        assert plot.get_attribute("data-points") == str(len(with_values))
        marked = plot.find_elements(By.CSS_SELECTOR, "circle.best")
        assert [m.get_attribute("data-key") for m in marked] == [best]
    best_trial = next(t for t in trials if t.metadata.name == best)
    point = css(admin, f'#plot-x circle[data-key="{best}"]')
    assert number(point.get_attribute("data-x") or "") == pytest.approx(best_trial.spec.params["x"])
    assert number(point.get_attribute("data-y") or "") == pytest.approx(best_trial.status.values[0])

    uids = {exp.metadata.uid or "", *(t.metadata.uid or "" for t in trials)}
    expected = events_about(client, ns, uids)
    assert expected  # the trials' creations at least
    wait(admin, "the events", lambda d: expected <= row_keys(d, "experiment-events-table"))
    shot("experiment-detail")


@pytest.mark.timeout(60)
def test_models_list_and_model_page_show_versions_aliases_and_events(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    ns = world.namespace
    model = client.get(Model, world.model, ns)
    versions = {
        v.spec.version: v
        for v in client.list(ModelVersion, ns).items
        if v.spec.model == world.model
    }
    assert sorted(versions) == [1, 2]
    assert model.spec.aliases == {"champion": 2}
    go(admin, platform, "/models")
    live(admin, "models")
    row = wait(
        admin,
        "the model's row",
        lambda d: css(d, f'#models-table tr[data-key="{ns}/{world.model}"]'),
    )
    wait(admin, "the version count", lambda d: cell(row, "Versions").text == "2")
    assert cell(row, "Latest").text == f"v{model.status.latest_version}" == "v2"
    assert cell(row, "Aliases").text == "champion → v2"
    shot("models")

    probe = probe_event(client, ns, "Model", world.model, model.metadata.uid or "")
    go(admin, platform, f"/models/{ns}/{world.model}")
    for section in ("model", "versions", "events"):
        live(admin, section)
    wait(admin, "both versions", lambda d: row_keys(d, "versions-table") == {"1", "2"})
    for number_, version in versions.items():
        vrow = css(admin, f'#versions-table tr[data-key="{number_}"]')
        assert cell(vrow, "Format").text == version.spec.format.value == "sklearn"
        assert cell(vrow, "Source").text == version.spec.source
        assert cell(vrow, "Run").text == version.spec.run_id == world.run_id
        href = css(cell(vrow, "Run"), "a").get_attribute("href") or ""
        assert href.endswith(f"#/runs/{ns}/{world.run_id}")  # the run that produced it
        assert cell(vrow, "Aliases").text == ("champion" if number_ == 2 else "")
    v2 = css(admin, '#versions-table tr[data-key="2"]')
    assert cell(v2, "Signature").text == "input-0 FP64 [-1, 4] → output-0 INT64 [-1]"
    assert cell(v2, "Metrics").text == "accuracy=0.97"
    assert cell(v2, "Description").text == "<i>refit</i> on more rows"
    assert cell(css(admin, '#versions-table tr[data-key="1"]'), "Signature").text == ""
    alias = css(admin, '#aliases-table tr[data-key="champion"]')
    assert cell(alias, "Version").text == "v2"

    shown = wait(
        admin,
        "the probe event",
        lambda d: css(d, f'#model-events-table tr[data-key="{probe.metadata.uid}"]'),
    )
    assert cell(shown, "Message").text == '<b id="injected">markup must show as text</b>'
    assert admin.find_elements(By.ID, "injected") == []
    assert admin.find_elements(By.CSS_SELECTOR, "#versions-table i") == []
    shot("model-detail")


@pytest.mark.timeout(60)
def test_services_list_shows_phase_url_replicas_and_latest_revision(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    isvc = client.get(InferenceService, world.service, world.namespace)
    go(admin, platform, "/services")
    live(admin, "services")
    key = f"{world.namespace}/{world.service}"
    row = wait(
        admin, "the service's row", lambda d: css(d, f'#services-table tr[data-key="{key}"]')
    )
    phase = css(cell(row, "Phase"), "[data-status]").get_attribute("data-status")
    assert phase == isvc.status.phase.value == "Ready"
    assert cell(row, "URL").text == isvc.status.url == f"{platform.url}/serving/{key}"
    assert cell(row, "Ready").text == isvc.status.replicas_text == "1/1"
    assert cell(row, "Latest revision").text == isvc.status.latest_revision
    assert cell(row, "Model").text == f"models:/{world.model}@champion"
    shot("services")


@pytest.mark.timeout(90)
def test_service_page_shows_revisions_events_and_the_requests_it_served(
    admin: WebDriver,
    platform: RunningPlatform,
    client: Client,
    http: httpx.Client,
    world: World,
    shot: Callable[[str], Path],
) -> None:
    ns, name = world.namespace, world.service
    isvc = client.get(InferenceService, name, ns)
    traffic = f"{API}/namespaces/{ns}/inferenceservices/{name}/traffic"
    assert http.get(traffic).json()["total"] == {"requests": 0, "errors": 0}
    go(admin, platform, f"/services/{ns}/{name}")
    for section in ("service", "revisions", "events"):
        live(admin, section)
    wait(
        admin,
        "no traffic yet",
        lambda d: css(d, "#traffic-total").get_attribute("data-requests") == "0",
    )

    assert [r.traffic_percent for r in isvc.status.revisions] == [100]
    for rev in isvc.status.revisions:
        row = css(admin, f'#revisions-table tr[data-key="{rev.name}"]')
        assert cell(row, "Traffic").text == f"{rev.traffic_percent}%"
        assert cell(row, "Replicas").text == f"{rev.ready_replicas}/{rev.replicas}" == "1/1"
        assert cell(row, "Model").text == rev.model
    url = css(admin, '#service-summary dd[data-field="URL"]').text
    assert url == isvc.status.url

    # Seven answers through the gateway: six predictions and one refused input (a 4xx
    # counts as a request, not an error).
    body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    infer = f"/serving/{ns}/{name}/v2/models/{name}/infer"
    for _ in range(6):
        assert http.post(infer, json=body).status_code == 200
    bad = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1.0]}]}
    assert http.post(infer, json=bad).status_code == 400
    assert http.get(traffic).json()["total"] == {"requests": 7, "errors": 0}

    total = wait(
        admin,
        "the page to count the 7 requests",
        lambda d: (
            css(d, "#traffic-total")
            if css(d, "#traffic-total").get_attribute("data-requests") == "7"
            else None
        ),
    )
    assert total.get_attribute("data-errors") == "0"
    assert total.text.startswith("7 requests, 0 errors (5xx) in the last 5 min")
    requests = css(admin, '#requests-chart g[data-series="requests"]')
    assert requests.get_attribute("data-sum") == "7"
    assert css(admin, '#requests-chart g[data-series="errors"]').get_attribute("data-sum") == "0"
    assert admin.find_elements(By.CSS_SELECTOR, '#latency-chart g[data-series="p50"] circle')

    pods = client.list(Pod, ns, label_selector=f"{SERVICE_LABEL}={name}").items
    expected = events_about(
        client, ns, {isvc.metadata.uid or "", *(p.metadata.uid or "" for p in pods)}
    )
    assert expected
    wait(admin, "the events", lambda d: expected <= row_keys(d, "service-events-table"))
    shot("service-detail")


@pytest.mark.timeout(60)
def test_pages_show_the_apis_refusals_and_missing_objects(
    browser: WebDriver,
    platform: RunningPlatform,
    client: Client,
    http: httpx.Client,
    world: World,
) -> None:
    other = unique("other")
    client.create(Namespace.new(other))
    issued = http.post("/auth/v1/tokens", json={"namespace": other})
    issued.raise_for_status()
    sign_in(browser, platform, issued.json()["token"])
    traffic = f"{API}/namespaces/{world.namespace}/inferenceservices/{world.service}/traffic"
    refusal = httpx.get(
        f"{platform.url}{traffic}", headers={"Authorization": f"Bearer {issued.json()['token']}"}
    )
    assert refusal.status_code == 403
    go(browser, platform, f"/services/{world.namespace}/{world.service}")
    error = wait(browser, "the traffic refusal", lambda d: css(d, "#traffic [role=alert]"))
    assert refusal.json()["message"] in error.text
    assert "(403 Forbidden)" in error.text

    sign_in(browser, platform, platform.admin_token())
    for route, kind in [
        (f"/services/{world.namespace}/nope", "InferenceService"),
        (f"/experiments/{world.namespace}/nope", "Experiment"),
        (f"/models/{world.namespace}/nope", "Model"),
    ]:
        go(browser, platform, route)
        alert = wait(browser, f"{route} not found", lambda d: css(d, ".page > [role=alert]"))
        assert alert.text == f"{kind} {world.namespace}/nope not found."
