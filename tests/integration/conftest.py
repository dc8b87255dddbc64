"""One real platform per test session: `python -m cnai up` on a free loopback port.

Tests that must own a platform (crash tests, restarts) start their own with
:func:`harness.start_platform`.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import httpx
import pytest
from harness import RunningPlatform, start_platform, unique
from workloads import marker, processes_with

from cnai import Client
from cnai.core.kinds import Namespace


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    running = start_platform(tmp_path_factory.mktemp("cnai-home"))
    yield running
    running.stop()


@pytest.fixture
def client(platform: RunningPlatform) -> Iterator[Client]:
    with platform.client() as c:
        yield c


@pytest.fixture
def http(platform: RunningPlatform) -> Iterator[httpx.Client]:
    """A raw HTTP client with the admin token, for requests the SDK would never send."""
    with httpx.Client(
        base_url=platform.url,
        headers={"Authorization": f"Bearer {platform.admin_token()}"},
        timeout=30,
    ) as c:
        yield c


@pytest.fixture
def namespace(client: Client) -> str:
    """A fresh namespace for one test; the session platform is shared."""
    name = unique("ns")
    client.create(Namespace.new(name))
    return name


@pytest.fixture
def mark() -> Iterator[str]:
    """A unique argument for this test's pod processes; any still alive at the end are
    killed, so a failing test leaves nothing running."""
    value = marker()
    yield value
    for pid in processes_with(value):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
