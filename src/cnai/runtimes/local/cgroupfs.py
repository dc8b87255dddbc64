"""Where the cgroup hierarchies are mounted and which cgroup this process is in.

Read from /proc/self/mountinfo and /proc/self/cgroup, for both cgroup v1 (one hierarchy
per controller, e.g. ``/sys/fs/cgroup/memory``) and v2 (one unified hierarchy).
Memory enforcement makes pod cgroups below these; the node's capacity reads the limits
of this process's own cgroups. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mount:
    """One mounted cgroup hierarchy."""

    root: str  # the cgroup shown at the mount point ("/" unless namespaced or bound)
    point: Path
    version: int  # 1 or 2
    controllers: frozenset[str]  # v1: from mount options; v2: cgroup.controllers


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def mounts(mountinfo: str | None = None) -> list[Mount]:
    """The cgroup hierarchies mounted here (``mountinfo`` overrides /proc for tests)."""
    text = mountinfo if mountinfo is not None else _read(Path("/proc/self/mountinfo"))
    found = []
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        root, point, fstype, options = fields[3], Path(fields[4]), tail[0], tail[2]
        if fstype == "cgroup":
            found.append(Mount(root, point, 1, frozenset(options.split(","))))
        elif fstype == "cgroup2":
            controllers = frozenset(_read(point / "cgroup.controllers").split())
            found.append(Mount(root, point, 2, controllers))
    return found


def find_mount(version: int, controller: str) -> Mount | None:
    """The hierarchy of ``version`` that has ``controller`` (v2: enabled at its root)."""
    for mount in mounts():
        if mount.version == version and controller in mount.controllers:
            return mount
    return None


def own_path(version: int, controller: str) -> str | None:
    """This process's cgroup path in the v1 hierarchy of ``controller``, or in v2."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, names, path = line.split(":", 2)
        if (version == 2 and names == "") or (version == 1 and controller in names.split(",")):
            return path
    return None


def own_dir(mount: Mount, controller: str) -> Path | None:
    """The directory of this process's cgroup under ``mount``, if it is visible there."""
    path = own_path(mount.version, controller)
    if path is None:
        return None
    root = mount.root.rstrip("/")
    if root and not (path == root or path.startswith(root + "/")):
        return None
    candidate = mount.point / path[len(root) :].lstrip("/")
    return candidate if candidate.is_dir() else None


def lineage(directory: Path, mount: Mount) -> list[Path]:
    """``directory`` and its ancestors up to the mount point (limits nest)."""
    chain = [directory]
    while chain[-1] != mount.point and chain[-1].parent != chain[-1]:
        chain.append(chain[-1].parent)
    return chain
