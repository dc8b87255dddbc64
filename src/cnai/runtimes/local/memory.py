"""Memory limits: a cgroup (v2 or v1, as root) when usable, otherwise an RSS watchdog.

The runtime picks the mode once by probing (:func:`detect`); the shim applies it per pod:

- ``cgroup-v2`` / ``cgroup-v1``: the shim makes ``<parent>/<uid>`` with the limit (and
  no swap where the kernel allows), the process joins it before it execs, and the
  kernel OOM-kills it past the limit. After the exit, the cgroup's ``oom_kill`` counter
  (``memory.events`` in v2, ``memory.oom_control`` in v1) says whether that happened;
  what is left in the cgroup is killed and the cgroup removed.
- ``rss``: the shim sums the RSS of the process group every 100 ms and SIGKILLs the
  group past the limit. It sees only the process group, and only every 100 ms.

v1 pod cgroups nest under this process's own memory cgroup, so whatever limits the
platform also limits its pods; v2 ones live under ``<mount>/cnai``, because a v2 cgroup
that holds processes cannot hand the memory controller to children. Standard library
only (the shim imports this module).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from . import cgroupfs
from .procfs import group_members, kill, rss_bytes

CGROUP_V2 = "cgroup-v2"
CGROUP_V1 = "cgroup-v1"
RSS = "rss"
AUTO = "auto"
MODES = (AUTO, CGROUP_V2, CGROUP_V1, RSS)
_PROBE_LIMIT = 64 * 2**20


@dataclass(frozen=True)
class Enforcement:
    """The mode in use and, for cgroup modes, the directory pod cgroups are made in."""

    mode: str
    parent: str = ""


def detect(requested: str = AUTO) -> Enforcement:
    """The first usable of cgroup-v2, cgroup-v1, rss; ValueError if a forced one is not."""
    if requested not in MODES:
        raise ValueError(f"memory enforcement {requested!r}: use one of {', '.join(MODES)}")
    if requested == RSS:
        return Enforcement(RSS)
    for mode in (CGROUP_V2, CGROUP_V1) if requested == AUTO else (requested,):
        parent = _v2_parent() if mode == CGROUP_V2 else _v1_parent()
        if parent is not None and _probe(mode, parent):
            return Enforcement(mode, str(parent))
    if requested != AUTO:
        raise ValueError(
            f"memory enforcement {requested} is not usable here "
            "(needs the memory controller mounted and writable, usually as root)"
        )
    return Enforcement(RSS)


def _v2_parent() -> Path | None:
    mount = cgroupfs.find_mount(2, "memory")
    return mount.point / "cnai" if mount else None


def _v1_parent() -> Path | None:
    mount = cgroupfs.find_mount(1, "memory")
    if mount is None:
        return None
    return (cgroupfs.own_dir(mount, "memory") or mount.point) / "cnai"


def prepare_parent(mode: str, parent: Path) -> None:
    """Make ``parent``; in v2, hand it the memory controller (OSError if not allowed)."""
    if mode == CGROUP_V2:
        (parent.parent / "cgroup.subtree_control").write_text("+memory")
    parent.mkdir(exist_ok=True)
    if mode == CGROUP_V2:
        (parent / "cgroup.subtree_control").write_text("+memory")


def _probe(mode: str, parent: Path) -> bool:
    try:
        prepare_parent(mode, parent)
        Cgroup.create(mode, parent, f"probe-{os.getpid()}", _PROBE_LIMIT).remove()
    except OSError:
        return False
    return True


def describe_bytes(n: int) -> str:
    """Bytes for a message: ``64Mi``."""
    return f"{n / 2**20:.0f}Mi" if n >= 2**20 else f"{n}B"


class Cgroup:
    """One pod's memory cgroup."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path = path
        self.mode = mode

    @classmethod
    def create(cls, mode: str, parent: Path, name: str, limit_bytes: int) -> Cgroup:
        """Make the cgroup with its limit; OSError (and nothing left behind) if it fails."""
        cgroup = cls(parent / name, mode)
        cgroup.path.mkdir(exist_ok=True)
        try:
            cgroup._set_limit(limit_bytes)
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def _set_limit(self, limit: int) -> None:
        if self.mode == CGROUP_V2:
            self._write("memory.max", limit)
            optional = {"memory.swap.max": 0, "memory.oom.group": 1}
        else:
            self._write("memory.limit_in_bytes", limit)
            optional = {"memory.memsw.limit_in_bytes": limit, "memory.swappiness": 0}
        for name, value in optional.items():
            with contextlib.suppress(OSError):  # no swap accounting, older kernel: fine
                self._write(name, value)

    def _write(self, name: str, value: int) -> None:
        (self.path / name).write_text(str(value))

    def _counters(self, name: str) -> dict[str, int]:
        try:
            lines = (self.path / name).read_text().splitlines()
        except OSError:
            return {}
        pairs = (line.split() for line in lines)
        return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}

    def join(self) -> None:
        """Move the calling process into this cgroup (runs between fork and exec)."""
        fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def oom_killed(self, returncode: int) -> bool:
        """Whether the kernel OOM-killed a process of this cgroup."""
        if self.mode == CGROUP_V2:
            events = self._counters("memory.events")
            return events.get("oom_kill", 0) > 0 or events.get("oom_group_kill", 0) > 0
        control = self._counters("memory.oom_control")
        if "oom_kill" in control:
            return control["oom_kill"] > 0
        # Kernels before 4.13 have no counter: a SIGKILL after hitting the limit.
        return returncode == -signal.SIGKILL and self._failcnt() > 0

    def _failcnt(self) -> int:
        try:
            return int((self.path / "memory.failcnt").read_text())
        except (OSError, ValueError):
            return 0

    def remove(self, wait_seconds: float = 2.0) -> bool:
        """Kill what is left in the cgroup and delete it; False if it stayed busy."""
        deadline = time.monotonic() + wait_seconds
        while True:
            for pid in self.pids():
                kill(pid)
            try:
                self.path.rmdir()
            except FileNotFoundError:
                return True
            except OSError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.02)
            else:
                return True


class RssWatchdog:
    """Polls a process group's RSS; reports when it is over the limit."""

    def __init__(self, limit_bytes: int, interval: float = 0.1) -> None:
        self.limit = limit_bytes
        self.interval = interval
        self._next = 0.0

    def over_limit(self, pgid: int, now: float) -> int | None:
        """The group's RSS if a check is due and it is over the limit, else None."""
        if now < self._next:
            return None
        self._next = now + self.interval
        rss = rss_bytes(group_members(pgid))
        return rss if rss > self.limit else None
