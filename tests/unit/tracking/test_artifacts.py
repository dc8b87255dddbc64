"""The artifact store, on the local disk and on an fsspec filesystem (memory://)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cnai.core.errors import BadRequest, NotFound
from cnai.tracking.artifacts import ArtifactStore

pytestmark = pytest.mark.anyio


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _failing() -> AsyncIterator[bytes]:
    yield b"half"
    raise ConnectionResetError("client went away")


@pytest.fixture(params=["local", "memory"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(tmp_path / "artifacts")
    return ArtifactStore(f"memory://cnai-test-{uuid.uuid4().hex}/artifacts")


async def _read(files: ArtifactStore, rel: str) -> bytes:
    return b"".join([c async for c in files.read("ns", "run", rel)])


async def test_put_list_read(files: ArtifactStore) -> None:
    assert await files.put("ns", "run", "model/weights.bin", _chunks(b"ab", b"cd")) == 4
    await files.put("ns", "run", "notes.txt", _chunks(b"hello"))
    assert [(e.path, e.is_dir) for e in files.list("ns", "run")] == [
        ("model", True),
        ("notes.txt", False),
    ]
    assert [(e.path, e.size) for e in files.list("ns", "run", "model")] == [
        ("model/weights.bin", 4)
    ]
    assert await _read(files, "model/weights.bin") == b"abcd"
    assert files.run_uri("ns", "run").endswith("/artifacts/ns/run")
    with pytest.raises(NotFound):
        await _read(files, "model/missing.bin")
    assert files.list("ns", "run", "nowhere") == []


async def test_a_failed_upload_leaves_nothing(files: ArtifactStore) -> None:
    with pytest.raises(ConnectionResetError):
        await files.put("ns", "run", "partial.bin", _failing())
    assert not files.exists_file("ns", "run", "partial.bin")
    assert [e.path for e in files.list("ns", "run")] == []


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "a\\\\b"])
def test_paths_stay_inside_the_run(files: ArtifactStore, path: str) -> None:
    if path.startswith("/"):
        # A leading slash is read relative to the run (as MLflow does), never absolute.
        assert files.path("ns", "run", path) == files.run_dir("ns", "run") / "etc" / "passwd"
        return
    with pytest.raises(BadRequest, match="must stay inside the run's artifacts"):
        files.path("ns", "run", path)
