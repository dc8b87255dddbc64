"""Which code a benchmark measured: the commit, and the files that differ from it."""

from __future__ import annotations

import subprocess
from typing import Any

from common.servers import BENCHMARKS

ROOT = BENCHMARKS.parent


def code(*paths: str) -> dict[str, Any]:
    """The commit measured and the files under ``paths`` (default: src/) that differ
    from it, by read-only git commands."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.rstrip()  # not lstrip: status lines start with a space

    changed = git("status", "--porcelain", "--", *(paths or ("src",))).splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD"), "changed": changed}
