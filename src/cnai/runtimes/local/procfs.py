"""Process groups from /proc: who is in a pod's group, is it alive, how much RSS it holds.

A pod's process leads its own process group, so its group id is its pid; grandchildren
stay in the group unless they leave it on purpose. Zombies do not count as alive: a
process whose parent (the shim) is gone may linger unreaped. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

_PROC = Path("/proc")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2])."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any live process is in group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's group: it exists, and the scan below says if it lives
    return bool(group_members(pgid))


def rss_bytes(pids: list[int]) -> int:
    """Total resident memory of ``pids``; pages they share count in each, so it errs high."""
    total = 0
    for pid in pids:
        try:
            resident = (_PROC / str(pid) / "statm").read_text().split()[1]
        except (OSError, IndexError):
            continue
        total += int(resident) * _PAGE
    return total


def signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to group ``pgid``; a group that is gone already is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def kill(pid: int, signum: int = signal.SIGKILL) -> None:
    """Send ``signum`` to ``pid``; a process that is gone already is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
