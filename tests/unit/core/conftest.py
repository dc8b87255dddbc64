"""Fixtures for kernel tests: a real SQLite store in a temp dir, a fake clock, the registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cnai.core.kernel import register_kernel
from cnai.core.registry import Registry
from cnai.core.store.sqlite import SQLiteStore

from .builders import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(db_path, clock=clock)
    yield s
    await s.close()


@pytest.fixture
def registry() -> Registry:
    r = Registry()
    register_kernel(r)
    return r
