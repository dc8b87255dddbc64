"""Checkpoints that survive a worker killed at any instant.

A TrainJob restarts its workers after a failure with ``CNAI_CHECKPOINT_DIR`` pointing at
a directory the platform keeps across restarts; a script saves there with :func:`save`
and resumes with :func:`load_latest`. Outside the platform the directory is
``./checkpoints`` (or one the script passes).

A checkpoint is ``ckpt-{step:010d}.pt``, written with ``torch.save``. It is first
written to a temporary file in the same directory (a hidden name that never matches the
checkpoint pattern), flushed and fsynced, then renamed over its final name, and the
directory is fsynced: a crash leaves either the whole checkpoint or a stray temporary
file, never a truncated ``ckpt-*.pt``. A file that is damaged anyway (a disk that lied
about fsync, a copy cut short) is skipped by :func:`load_latest`, which then falls back
to the next older checkpoint; :func:`save` keeps the newest ``keep`` for that reason.

Only one worker should write: by default :func:`save` writes on rank 0 and returns
``None`` elsewhere (``only_main=False`` lets the caller decide).

torch is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnai.training.world import WorldInfo

log = logging.getLogger("cnai.training.checkpoint")

DIR_ENV = "CNAI_CHECKPOINT_DIR"  # keep in sync with the TrainJob launcher
DEFAULT_DIR = "checkpoints"
_NAME = re.compile(r"ckpt-(\d+)\.pt")
_TEMP_PREFIX = ".ckpt-tmp-"
_STALE_TEMP_SECONDS = 60.0  # an unfinished save this old was cut short by a crash

# What torch.load raises for a file that is truncated, garbled or gone (pruned meanwhile).
_UNREADABLE = (RuntimeError, EOFError, OSError, pickle.UnpicklingError)


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: its step, its file, and the state that was saved."""

    step: int
    path: Path
    state: Any


def checkpoint_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """The checkpoint directory (created): ``directory``, else ``$CNAI_CHECKPOINT_DIR``,
    else ``./checkpoints``."""
    path = Path(directory or os.environ.get(DIR_ENV) or DEFAULT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_name(step: int) -> str:
    """The file name of the checkpoint of ``step``."""
    return f"ckpt-{step:010d}.pt"


def save(
    state: Any,
    step: int,
    *,
    directory: str | os.PathLike[str] | None = None,
    keep: int | None = 3,
    only_main: bool = True,
) -> Path | None:
    """Write ``state`` (anything ``torch.save`` takes) as the checkpoint of ``step``,
    atomically, then delete all but the newest ``keep`` checkpoints (``None`` keeps
    all). Returns the checkpoint's path; with ``only_main`` (the default), a worker
    other than rank 0 writes nothing and returns ``None``."""
    if step < 0:
        raise ValueError(f"step must be at least 0, not {step}")
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be at least 1 or None, not {keep}")
    if only_main and not WorldInfo.from_env().is_main:
        return None
    folder = checkpoint_dir(directory)
    path = folder / checkpoint_name(step)
    _write_atomically(state, path)
    if keep is not None:
        _prune(folder, keep)
    _remove_stale_temps(folder)
    return path


def load_latest(
    directory: str | os.PathLike[str] | None = None,
    map_location: Any = "cpu",
    *,
    weights_only: bool = True,
) -> Checkpoint | None:
    """The newest checkpoint that loads, or ``None`` when there is none. A file that
    fails to load is skipped with a warning and the next older one is tried.
    ``weights_only`` is passed to ``torch.load``: tensors, containers and numbers load
    as they are; arbitrary pickled objects need ``weights_only=False`` (only for files
    you trust)."""
    import torch

    for step, path in reversed(_checkpoints(checkpoint_dir(directory))):
        try:
            state = torch.load(path, map_location=map_location, weights_only=weights_only)
        except _UNREADABLE as exc:
            log.warning("skipping checkpoint %s, which does not load: %s", path, exc)
            continue
        return Checkpoint(step, path, state)
    return None


def latest_step(directory: str | os.PathLike[str] | None = None) -> int | None:
    """The step of the newest checkpoint file, from its name alone (nothing is loaded,
    so a damaged newest file still counts), or ``None`` when there is none."""
    found = _checkpoints(checkpoint_dir(directory))
    return found[-1][0] if found else None


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in ``folder``, oldest first (by step, not by
    name, so step 10 comes after step 9 whatever the padding)."""
    found = []
    for entry in folder.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def _write_atomically(state: Any, path: Path) -> None:
    import torch

    # Not tempfile.mkstemp: its files are private (0600), a checkpoint is as readable
    # as any other file the job writes (umask applies).
    temp = path.parent / f"{_TEMP_PREFIX}{uuid.uuid4().hex}.partial"
    try:
        with temp.open("xb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable: the directory entry is data of the directory."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(folder: Path, keep: int) -> None:
    for _, path in _checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)


def _remove_stale_temps(folder: Path) -> None:
    """Delete what saves cut short by a crash left behind. A younger file may be a save
    in progress elsewhere, so it stays."""
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for entry in folder.glob(f"{_TEMP_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            if entry.stat().st_mtime < cutoff:
                entry.unlink()
