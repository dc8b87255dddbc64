"""A real browser for the dashboard's tests: Debian's chromium through its chromedriver.

`make test` installs both (`make browser`). Where they are missing or cannot start, the
tests fail in CI (``CI=true``), so a broken setup is never a green run, and skip
elsewhere with the reason. Screenshots (one per page a test checks, and one of every
failing test) go to ``.artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import httpx
import pytest
from harness import RunningPlatform, start_platform

from cnai import Client

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / ".artifacts" / "screenshots"
CHROMIUM = os.environ.get("CNAI_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CNAI_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MiB, too little for a renderer
    "--window-size=1400,1000",
)


def _unavailable(reason: str) -> None:
    message = (
        f"the dashboard's browser tests cannot run: {reason}. "
        "Install Debian's chromium and chromium-driver (`make browser`, as root)."
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _start_chromium() -> object:
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[dev]')")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            _unavailable(f"{path} not found")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    except WebDriverException as exc:
        _unavailable(f"chromium did not start: {exc.msg or exc}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium for a test module."""
    driver = _start_chromium()
    try:
        yield driver
    finally:
        driver.quit()  # type: ignore[attr-defined]


def screenshot(driver: object, name: str) -> Path:
    """Save the page as ``.artifacts/screenshots/NAME.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path


@pytest.fixture
def shot(browser: object) -> Callable[[str], Path]:
    """``shot("overview")`` saves the browser's page as a screenshot."""
    return lambda name: screenshot(browser, name)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach a screenshot and the browser's console to every failing browser test."""
    report = yield
    if report.when == "call" and report.failed and "browser" in getattr(item, "funcargs", {}):
        driver = item.funcargs["browser"]  # type: ignore[attr-defined]
        try:
            path = screenshot(driver, f"FAILED-{item.name}")
            logs = driver.get_log("browser")
        except Exception as exc:  # a dead browser must not hide the test's own failure
            report.sections.append(("browser", f"no screenshot: {exc}"))
        else:
            lines = "\n".join(f"{e['level']} {e['message']}" for e in logs)
            report.sections.append(("browser", f"screenshot: {path}\nconsole:\n{lines}"))
    return report


# -- the platform the dashboard's test modules each start --------------------------------


@pytest.fixture(scope="module")
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    """A real platform for the requesting test module (its home named after it)."""
    name = request.module.__name__.rpartition(".")[2].replace("_", "-")
    running = start_platform(tmp_path_factory.mktemp(f"cnai-{name}-home"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(platform: RunningPlatform) -> Iterator[Client]:
    with platform.client() as c:
        yield c


@pytest.fixture(scope="module")
def http(platform: RunningPlatform) -> Iterator[httpx.Client]:
    """Raw HTTP to the platform with the admin token."""
    headers = {"Authorization": f"Bearer {platform.admin_token()}"}
    with httpx.Client(base_url=platform.url, headers=headers, timeout=30) as c:
        yield c
