"""Run artifacts (files and directories), under the state directory or in any store
``fsspec`` reaches (``s3://bucket/prefix``, ``gs://...``, ``memory://...``).

A run's artifacts live in ``ROOT/NAMESPACE/RUN_ID/``, where ROOT is
``$CNAI_HOME/artifacts`` unless ``CNAI_ARTIFACT_ROOT`` names an fsspec URL. Locally an
upload streams to a temporary file beside its target and is renamed into place once
complete, so a reader never sees half a file and an interrupted upload leaves nothing
behind; an object store makes the object visible only once it is written in full.
Paths are relative, ``/``-separated, and may not leave the run's directory.
"""

from __future__ import annotations

import builtins
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cnai.core.errors import BadRequest, NotFound

# Artifacts may be models of several GB: uploads have their own body limit.
MAX_ARTIFACT_BYTES = 20 * 1024**3
CHUNK = 1024 * 1024
ARTIFACT_ROOT_ENV = "CNAI_ARTIFACT_ROOT"  # an fsspec URL; the state directory by default
UPLOAD_PATHS = re.compile(
    r"^(/apis/tracking\.cnai\.io/v1/namespaces/[^/]+/runs/[^/]+/artifacts/"
    r"|/(ajax-)?api/2\.0/mlflow-artifacts/artifacts/)"
)


@dataclass(frozen=True)
class Entry:
    """A file or directory among a run's artifacts."""

    path: str  # relative to the run's artifact root
    is_dir: bool
    size: int


class ArtifactStore:
    """Files of runs under ``root``: a local directory or an fsspec URL."""

    def __init__(self, root: Path | str) -> None:
        text = str(root)
        self.local = "://" not in text or text.startswith("file://")
        if self.local:
            self.root: Path = Path(text.removeprefix("file://"))
            self.fs: Any = None
            self.base = str(self.root)
        else:
            import fsspec  # type: ignore[import-untyped]  # only for remote stores

            self.fs, self.base = fsspec.core.url_to_fs(text)
            self.root = Path(self.base)
        self.url = text if not self.local else self.root.as_uri()

    def run_uri(self, namespace: str, run_id: str) -> str:
        """Where a run's artifacts are, as a URI."""
        return f"{self.url.rstrip('/')}/{namespace}/{run_id}"

    def run_dir(self, namespace: str, run_id: str) -> Path:
        return self.root / namespace / run_id

    def path(self, namespace: str, run_id: str, relative: str) -> Path:
        """The file for ``relative`` in a run's artifacts; BadRequest if it would leave
        them."""
        rel = PurePosixPath(relative.strip("/")) if relative else PurePosixPath()
        if rel.is_absolute() or ".." in rel.parts or "\\" in relative or "\0" in relative:
            raise BadRequest(f"artifact path {relative!r}: must stay inside the run's artifacts")
        return self.run_dir(namespace, run_id).joinpath(*rel.parts)

    def _key(self, target: Path) -> str:
        return target.as_posix()

    async def put(
        self, namespace: str, run_id: str, relative: str, chunks: AsyncIterator[bytes]
    ) -> int:
        """Write one file from ``chunks``; returns its size. All or nothing."""
        target = self.path(namespace, run_id, relative)
        if not relative.strip("/"):
            raise BadRequest("artifact path: a file name is required")
        if not self.local:
            return await self._put_remote(target, relative, chunks)
        if target.is_dir():
            raise BadRequest(f"artifact path {relative!r}: is a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in chunks:
                    f.write(chunk)
                    size += len(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    async def _put_remote(self, target: Path, relative: str, chunks: AsyncIterator[bytes]) -> int:
        key = self._key(target)
        if self.fs.isdir(key):
            raise BadRequest(f"artifact path {relative!r}: is a directory")
        # Gathered first: an object store writes the whole object at close, and a
        # failed upload must leave nothing half-written behind.
        parts = [chunk async for chunk in chunks]
        data = b"".join(parts)
        self.fs.makedirs(self._key(target.parent), exist_ok=True)
        with self.fs.open(key, "wb") as f:
            f.write(data)
        return len(data)

    def exists_file(self, namespace: str, run_id: str, relative: str) -> bool:
        target = self.path(namespace, run_id, relative)
        return target.is_file() if self.local else bool(self.fs.isfile(self._key(target)))

    def exists_dir(self, namespace: str, run_id: str, relative: str) -> bool:
        target = self.path(namespace, run_id, relative)
        return target.is_dir() if self.local else bool(self.fs.isdir(self._key(target)))

    def file(self, namespace: str, run_id: str, relative: str) -> Path:
        """The local file (local stores only; see :meth:`read`)."""
        target = self.path(namespace, run_id, relative)
        if not target.is_file():
            raise NotFound(f"artifact {relative!r} not found in run {run_id}")
        return target

    async def read(self, namespace: str, run_id: str, relative: str) -> AsyncIterator[bytes]:
        """The file's bytes in chunks (any store)."""
        if not self.exists_file(namespace, run_id, relative):
            raise NotFound(f"artifact {relative!r} not found in run {run_id}")
        target = self.path(namespace, run_id, relative)
        opener = open if self.local else self.fs.open
        with opener(target if self.local else self._key(target), "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def list(self, namespace: str, run_id: str, relative: str = "") -> list[Entry]:
        """The entries directly under ``relative`` (empty when there are none)."""
        base = self.run_dir(namespace, run_id)
        where = self.path(namespace, run_id, relative)
        if not self.local:
            return self._list_remote(base, where)
        if where.is_file():
            return [Entry(where.relative_to(base).as_posix(), False, where.stat().st_size)]
        if not where.is_dir():
            return []
        out = []
        for child in sorted(where.iterdir()):
            if child.name.startswith(".upload-"):
                continue
            rel = child.relative_to(base).as_posix()
            out.append(Entry(rel, child.is_dir(), 0 if child.is_dir() else child.stat().st_size))
        return out

    def _list_remote(self, base: Path, where: Path) -> builtins.list[Entry]:
        key, prefix = self._key(where), self._key(base).rstrip("/") + "/"
        if self.fs.isfile(key):
            return [Entry(key.removeprefix(prefix), False, int(self.fs.size(key)))]
        if not self.fs.isdir(key):
            return []
        out = []
        for info in sorted(self.fs.ls(key, detail=True), key=lambda i: i["name"]):
            name = str(info["name"]).lstrip("/")
            rel = name.removeprefix(prefix.lstrip("/"))
            is_dir = info.get("type") == "directory"
            out.append(Entry(rel, is_dir, 0 if is_dir else int(info.get("size") or 0)))
        return out
