"""One real platform per test session: `python -m cnai up` on a free loopback port.

Tests that must own a platform (crash tests, restarts) start their own with
:func:`harness.start_platform`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import RunningPlatform, start_platform

from cnai import Client


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    running = start_platform(tmp_path_factory.mktemp("cnai-home"))
    yield running
    running.stop()


@pytest.fixture
def client(platform: RunningPlatform) -> Iterator[Client]:
    with platform.client() as c:
        yield c
