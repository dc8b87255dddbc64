"""Browser helpers the dashboard's tests share: waiting, finding, navigating, signing in."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from harness import RunningPlatform
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 20.0  # a bound, not a threshold: pages answer in well under a second here
T = TypeVar("T")


def wait(driver: WebDriver, what: str, predicate: Callable[[WebDriver], T]) -> T:
    """Wait until ``predicate`` returns something truthy (elements may not exist yet)."""
    waiter = WebDriverWait(
        driver,
        WAIT_S,
        poll_frequency=0.05,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    return waiter.until(predicate, message=f"timed out waiting for {what}")


def css(driver: WebDriver | WebElement, selector: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, selector)


def cell(row: WebElement, column: str) -> WebElement:
    return css(row, f'td[data-col="{column}"]')


def go(driver: WebDriver, platform: RunningPlatform, route: str) -> None:
    driver.get(f"{platform.url}/#{route}")


def sign_in(driver: WebDriver, platform: RunningPlatform, token: str) -> None:
    """Sign in through the login page (signing out first if someone else is in)."""
    go(driver, platform, "/")
    shown = wait(
        driver,
        "login or header",
        lambda d: d.find_elements(By.ID, "login-page") or d.find_elements(By.ID, "logout"),
    )
    if shown[0].get_attribute("id") == "logout":
        shown[0].click()
        wait(driver, "the login page", lambda d: css(d, "#login-page"))
    field = css(driver, "#token")
    field.clear()
    field.send_keys(token)
    css(driver, "#login-submit").click()
    wait(driver, "the signed-in header", lambda d: css(d, "#identity"))


def live(driver: WebDriver, section: str) -> WebElement:
    """Wait until a section's list is loaded and its watch running."""
    return wait(
        driver,
        f"section {section} to be live",
        lambda d: css(d, f'section#{section}[data-state="live"]'),
    )
