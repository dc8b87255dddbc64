"""The runs pages in a real browser against a real platform: the runs list (latest
metric values, filters, sort, paging's total, refresh), a run's detail with a chart per
metric, and the compare overlay of several runs on one chart.

Runs are logged through the SDK (``cnai.tracking.start_run``) into a namespace of the
module's own. Charts are checked through what uPlot drew (its instance on the chart's
element: series labels and points), not pixels. The runs list is not live (tracking
records have no watch): a run logged while it is open appears after Refresh.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import RunningPlatform, unique
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from cnai.core.kinds import Namespace
from cnai.tracking.sdk import TrackingClient, start_run

from .pages import css, go, wait

TRACKING = "/apis/tracking.cnai.io/v1/namespaces"
STEPS = 30


@dataclass
class World:
    """What the module logged: runs by name, in the namespace ``ns``."""

    ns: str
    runs: dict[str, str]  # name -> id


# -- fixtures ------------------------------------------------------------------------


def tracking(platform: RunningPlatform, ns: str) -> TrackingClient:
    return TrackingClient(server=platform.url, token=platform.admin_token(), namespace=ns)


def log_run(
    client: TrackingClient, name: str, group: str, lr: float, extra: str | None = None
) -> str:
    """A finished run: params, a tag, loss and acc over STEPS steps (and ``extra``)."""
    with start_run(name, group=group, params={"lr": lr, "layers": 2}, client=client) as run:
        run.set_tags({"team": "vision"})
        for step in range(STEPS):
            metrics = {"loss": lr * 10 / (step + 1), "acc": 1 - 1 / (step + 2) - lr}
            if extra:
                metrics[extra] = step * lr
            run.log_metrics(metrics, step=step)
        return run.id


@pytest.fixture(scope="module")
def world(platform: RunningPlatform) -> World:
    ns = unique("runs")
    with platform.client() as c:
        c.create(Namespace.new(ns))
    with tracking(platform, ns) as client:
        runs = {
            "sweep-a": log_run(client, "sweep-a", "sweep", 0.1, extra="grad/norm"),
            "sweep-b": log_run(client, "sweep-b", "sweep", 0.03),
            "sweep-c": log_run(client, "sweep-c", "sweep", 0.01),
            "baseline": log_run(client, "baseline", "other", 0.05),
        }
    return World(ns, runs)


@pytest.fixture
def admin(browser: WebDriver, platform: RunningPlatform) -> WebDriver:
    """The browser, signed in with the admin token (once per module's browser)."""
    go(browser, platform, "/")
    shown = wait(
        browser,
        "login or header",
        lambda d: d.find_elements(By.ID, "login-page") or d.find_elements(By.ID, "identity"),
    )
    if shown[0].get_attribute("id") == "login-page":
        css(browser, "#token").send_keys(platform.admin_token())
        css(browser, "#login-submit").click()
        wait(browser, "the signed-in header", lambda d: css(d, "#identity"))
    return browser


# -- helpers -------------------------------------------------------------------------


def api_runs(http: httpx.Client, ns: str, **query: Any) -> dict[str, Any]:
    answer = http.get(f"{TRACKING}/{ns}/runs", params=query)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def table_rows(driver: WebDriver) -> list[WebElement]:
    """The runs table's rows once its data is shown (not while a request is out)."""
    wait(driver, "the runs table", lambda d: css(d, '#runs[data-state="ready"]'))
    return driver.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")


def shown_names(driver: WebDriver) -> list[str]:
    return [css(r, 'td[data-col="Name"]').text for r in table_rows(driver)]


def wait_names(driver: WebDriver, expected: list[str]) -> None:
    wait(driver, f"the rows {expected}", lambda d: shown_names(d) == expected)


# What uPlot drew: per series (x excepted) its label and its non-null points.
DRAWN = """
const el = document.querySelector(arguments[0]);
if (!el || !el.uplot || el.dataset.ready !== "1") return null;
const u = el.uplot;
return u.series.slice(1).map((s, i) => ({
  label: s.label,
  xs: Array.from(u.data[0]).filter((_, j) => u.data[i + 1][j] != null),
  ys: Array.from(u.data[i + 1]).filter((y) => y != null),
}));
"""


def drawn(driver: WebDriver, selector: str) -> list[dict[str, Any]]:
    wait(driver, "the chart to be drawn", lambda d: d.execute_script(DRAWN, selector) is not None)
    result: list[dict[str, Any]] = driver.execute_script(DRAWN, selector)
    return result


def chart_ready(driver: WebDriver) -> None:
    wait(
        driver,
        "body[data-chart-ready]",
        lambda d: d.execute_script("return document.body.dataset.chartReady === '1'"),
    )


# -- tests ---------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_runs_list_shows_each_runs_latest_values_as_the_api_reports_them(
    admin: WebDriver,
    platform: RunningPlatform,
    world: World,
    http: httpx.Client,
    shot: Callable[[str], Path],
) -> None:
    go(admin, platform, f"/runs/{world.ns}")
    api = api_runs(http, world.ns)
    assert api["total"] == 4
    rows = table_rows(admin)
    assert admin.execute_script("return document.body.dataset.runsReady") == "1"
    assert [r.get_attribute("data-key") for r in rows] == [r["id"] for r in api["items"]]
    heads = admin.find_elements(By.CSS_SELECTOR, "#runs-table thead th")
    header = [th.text.rstrip(" ▲▼") for th in heads]
    assert header[1:6] == ["Name", "Experiment", "Status", "Start", "Duration"]
    assert heads[4].get_attribute("aria-sort") == "descending"  # newest first
    # The metrics every run has come first; grad/norm (one run) follows.
    assert header[6:] == ["acc", "loss", "grad/norm"]
    groups = {
        g["id"]: g["name"] for g in http.get(f"{TRACKING}/{world.ns}/rungroups").json()["items"]
    }
    for row, run in zip(rows, api["items"], strict=True):
        assert css(row, 'td[data-col="Name"]').text == run["name"]
        assert css(row, 'td[data-col="Experiment"]').text == groups[run["groupId"]]
        assert css(row, 'td[data-col="Status"]').text == run["status"] == "FINISHED"
        for key in ("acc", "loss", "grad/norm"):
            value = css(row, f'td[data-metric="{key}"]').get_attribute("data-value")
            if key in run["metrics"]:
                assert float(value or "nan") == run["metrics"][key]["value"], (run["name"], key)
            else:
                assert value == ""
    assert css(admin, "#runs h2").text == f"4 runs in {world.ns}"
    shot("runs-list")


@pytest.mark.timeout(90)
def test_runs_filter_by_experiment_and_text_and_sort_by_a_metric(
    admin: WebDriver, platform: RunningPlatform, world: World, http: httpx.Client
) -> None:
    go(admin, platform, f"/runs/{world.ns}")
    table_rows(admin)
    Select(css(admin, "#runs-group")).select_by_visible_text("other")
    wait_names(admin, ["baseline"])
    Select(css(admin, "#runs-group")).select_by_visible_text("all")
    css(admin, "#runs-filter").send_keys("SWEEP-")
    by_api = [r["name"] for r in api_runs(http, world.ns, q="SWEEP-")["items"]]
    assert sorted(by_api) == ["sweep-a", "sweep-b", "sweep-c"]
    wait_names(admin, by_api)
    # Sorting is the server's: ascending loss, then descending on a second click.
    css(admin, 'th[data-sort="metrics.loss"] button').click()
    ascending = [
        r["name"] for r in api_runs(http, world.ns, q="SWEEP-", sort="metrics.loss")["items"]
    ]
    assert ascending == ["sweep-c", "sweep-b", "sweep-a"]
    wait_names(admin, ascending)
    css(admin, 'th[data-sort="metrics.loss"] button').click()
    wait_names(admin, ascending[::-1])
    css(admin, "#runs-filter").send_keys("no-such-run")
    wait(admin, "no rows", lambda d: css(d, "p#runs-table.empty").text == "No runs match.")


@pytest.mark.timeout(90)
def test_run_detail_shows_params_tags_and_a_chart_per_metric(
    admin: WebDriver,
    platform: RunningPlatform,
    world: World,
    http: httpx.Client,
    shot: Callable[[str], Path],
) -> None:
    run_id = world.runs["sweep-a"]
    go(admin, platform, f"/runs/{world.ns}")
    css(wait(admin, "the run's row", lambda d: css(d, f'tr[data-key="{run_id}"]')), "a").click()
    wait(admin, "the run page", lambda d: css(d, f'#run-page[data-run="{run_id}"]'))
    chart_ready(admin)
    run = http.get(f"{TRACKING}/{world.ns}/runs/{run_id}").json()
    assert css(admin, "#run-name").text == "sweep-a"
    params = admin.find_elements(By.CSS_SELECTOR, "#run-params-table tbody tr")
    assert (
        {
            r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
            for r in params
        }
        == run["params"]
        == {"lr": "0.1", "layers": "2"}
    )
    assert "vision" in css(admin, "#run-tags-table").text
    boxes = admin.find_elements(By.CSS_SELECTOR, "figure.chart-box")
    assert sorted(b.get_attribute("data-metric") for b in boxes) == sorted(run["metrics"])
    for key in run["metrics"]:
        series = drawn(admin, f'figure[data-metric="{key}"] .chart')
        history = http.get(f"{TRACKING}/{world.ns}/runs/{run_id}/metrics/{key}").json()
        assert len(series) == 1
        assert series[0]["label"] == key
        assert series[0]["xs"] == history["steps"] == list(range(STEPS))
        assert series[0]["ys"] == history["values"]
    assert "No artifacts." in css(admin, "#run-artifacts-card").text
    shot("run-detail")


@pytest.mark.timeout(90)
def test_compare_overlay_draws_one_labelled_series_per_selected_run(
    admin: WebDriver,
    platform: RunningPlatform,
    world: World,
    http: httpx.Client,
    shot: Callable[[str], Path],
) -> None:
    go(admin, platform, f"/runs/{world.ns}")
    chosen = ["sweep-a", "sweep-b", "baseline"]
    for name in chosen:
        css(table_rows(admin)[0], "td")  # loaded
        css(admin, f'input.run-check[data-run="{world.runs[name]}"]').click()
    compare = css(admin, "#runs-compare")
    assert compare.text == "Compare 3 selected"
    compare.click()
    wait(admin, "the compare page", lambda d: css(d, "#compare-page"))
    chart_ready(admin)
    series = drawn(admin, "#compare-chart")
    ids = [world.runs[n] for n in chosen]
    found = http.post(f"{TRACKING}/{world.ns}/metrics:history", json={"key": "acc", "runs": ids})
    # The metric every run has, first by name, is drawn when the link names none.
    assert Select(css(admin, "#compare-metric")).first_selected_option.text == "acc"
    assert sorted(s["label"] for s in series) == sorted(chosen)
    for s in series:
        history = found.json()["runs"][world.runs[s["label"]]]
        assert (s["xs"], s["ys"]) == (history["steps"], history["values"])
        assert len(s["ys"]) == STEPS
    shot("runs-compare")

    # Another metric: only the run that logged it has a series.
    Select(css(admin, "#compare-metric")).select_by_visible_text("grad/norm")
    wait(admin, "grad/norm in the link", lambda d: "metric=grad%2Fnorm" in d.current_url)
    chart_ready(admin)
    series = drawn(admin, "#compare-chart")
    assert [s["label"] for s in series] == ["sweep-a"]
    assert series[0]["ys"] == [pytest.approx(s * 0.1) for s in range(STEPS)]


@pytest.mark.timeout(90)
def test_a_run_logged_while_the_list_is_open_appears_after_refresh(
    admin: WebDriver, platform: RunningPlatform, world: World
) -> None:
    go(admin, platform, f"/runs/{world.ns}")
    assert len(table_rows(admin)) == len(world.runs)
    with tracking(platform, world.ns) as client:
        new_id = log_run(client, "late-run", "sweep", 0.2)
    world.runs["late-run"] = new_id
    css(admin, "#runs-refresh").click()
    wait(admin, "the new run", lambda d: css(d, f'tr[data-key="{new_id}"]'))
    assert shown_names(admin)[0] == "late-run"  # newest first
    assert css(admin, "#runs h2").text == f"5 runs in {world.ns}"


@pytest.mark.timeout(60)
def test_api_errors_are_shown_on_the_page_and_bad_queries_name_the_field(
    admin: WebDriver, platform: RunningPlatform, world: World, http: httpx.Client
) -> None:
    missing = http.get(f"{TRACKING}/{world.ns}/runs/nope")
    assert missing.status_code == 404
    go(admin, platform, f"/runs/{world.ns}/nope")
    alert = wait(admin, "the error", lambda d: css(d, "#run-page [role=alert]"))
    assert missing.json()["message"] in alert.text

    for query, field in [({"sort": "loss"}, "sort:"), ({"offset": "-2"}, "offset:")]:
        refused = http.get(f"{TRACKING}/{world.ns}/runs", params=query)
        assert refused.status_code == 400
        assert refused.json()["message"].startswith(field)
    body = {"key": "loss", "runs": [world.runs["sweep-a"]], "maxPoints": 1}
    refused = http.post(f"{TRACKING}/{world.ns}/metrics:history", json=body)
    assert (refused.status_code, refused.json()["message"][:10]) == (400, "maxPoints:")
    body["maxPoints"] = 10
    thin = http.post(f"{TRACKING}/{world.ns}/metrics:history", json=body).json()
    steps = thin["runs"][world.runs["sweep-a"]]["steps"]
    assert (len(steps), steps[0], steps[-1]) == (10, 0, STEPS - 1)
    assert not math.isnan(thin["runs"][world.runs["sweep-a"]]["values"][0])


@pytest.mark.timeout(90)
def test_the_list_pages_through_many_runs_fifty_at_a_time(
    admin: WebDriver, platform: RunningPlatform, http: httpx.Client
) -> None:
    ns = unique("many")
    with platform.client() as c:
        c.create(Namespace.new(ns))
    for i in range(53):
        created = http.post(f"{TRACKING}/{ns}/runs", json={"name": f"r{i:02d}", "startTime": i})
        assert created.status_code == 201, created.text
    go(admin, platform, f"/runs/{ns}")
    first = api_runs(http, ns, limit=50)
    wait_names(admin, [r["name"] for r in first["items"]])
    assert css(admin, "#runs-range").text == "1\u201350 of 53"  # an en dash
    css(admin, "#runs-next").click()
    rest = api_runs(http, ns, limit=50, offset=50)["items"]
    assert [r["name"] for r in rest] == ["r02", "r01", "r00"]
    wait_names(admin, ["r02", "r01", "r00"])
    assert css(admin, "#runs-range").text == "51\u201353 of 53"
    assert css(admin, "#runs-next").get_attribute("disabled") == "true"
