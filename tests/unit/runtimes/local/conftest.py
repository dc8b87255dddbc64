"""Fixtures for the local runtime: a pods root in a temp dir whose pods are all removed
(processes killed, cgroups deleted) when the test ends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnai.runtimes.local import LocalRuntime


async def _remove_all(root: Path) -> None:
    cleaner = LocalRuntime(root, memory_enforcement="rss")
    for uid in await cleaner.known_pods():
        await cleaner.remove(uid)


@pytest.fixture
def pods_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "pods"
    yield root
    if root.exists():
        asyncio.run(_remove_all(root))


@pytest.fixture
def runtime(pods_root: Path) -> LocalRuntime:
    return LocalRuntime(pods_root, node_name="test-node", memory_enforcement="rss")
