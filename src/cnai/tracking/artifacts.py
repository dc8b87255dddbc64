"""Run artifacts (files and directories) under the state directory.

A run's artifacts live in ``$CNAI_HOME/artifacts/NAMESPACE/RUN_ID/``. An upload streams
to a temporary file beside its target and is renamed into place once complete, so a
reader never sees half a file and an interrupted upload leaves nothing behind. Paths are
relative, ``/``-separated, and may not leave the run's directory.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cnai.core.errors import BadRequest, NotFound

# Artifacts may be models of several GB: uploads have their own body limit.
MAX_ARTIFACT_BYTES = 20 * 1024**3
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
    """Files of runs under ``root`` (``$CNAI_HOME/artifacts``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def run_dir(self, namespace: str, run_id: str) -> Path:
        return self.root / namespace / run_id

    def path(self, namespace: str, run_id: str, relative: str) -> Path:
        """The file for ``relative`` in a run's artifacts; BadRequest if it would leave
        them."""
        rel = PurePosixPath(relative.strip("/")) if relative else PurePosixPath()
        if rel.is_absolute() or ".." in rel.parts or "\\" in relative or "\0" in relative:
            raise BadRequest(f"artifact path {relative!r}: must stay inside the run's artifacts")
        return self.run_dir(namespace, run_id).joinpath(*rel.parts)

    async def put(
        self, namespace: str, run_id: str, relative: str, chunks: AsyncIterator[bytes]
    ) -> int:
        """Write one file from ``chunks``; returns its size. All or nothing."""
        target = self.path(namespace, run_id, relative)
        if not relative.strip("/"):
            raise BadRequest("artifact path: a file name is required")
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

    def file(self, namespace: str, run_id: str, relative: str) -> Path:
        target = self.path(namespace, run_id, relative)
        if not target.is_file():
            raise NotFound(f"artifact {relative!r} not found in run {run_id}")
        return target

    def list(self, namespace: str, run_id: str, relative: str = "") -> list[Entry]:
        """The entries directly under ``relative`` (empty when there are none)."""
        base = self.run_dir(namespace, run_id)
        where = self.path(namespace, run_id, relative)
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
