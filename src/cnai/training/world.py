"""Where this process stands in a distributed job, read from the launcher's environment.

A TrainJob starts its workers with the contract of ``torchrun``: ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK`` (or ``NODE_RANK``),
``TORCHELASTIC_RESTART_COUNT``, ``MASTER_ADDR`` and ``MASTER_PORT``. A script that reads
them through :class:`WorldInfo` runs unchanged under the platform, under plain
``torchrun``, and as a single process with none of them set. Keep in sync with the
TrainJob launcher, which sets these variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# torchrun's own defaults, so a single process looks like a one-worker torchrun job.
DEFAULT_MASTER_ADDR = "127.0.0.1"
DEFAULT_MASTER_PORT = 29500


@dataclass(frozen=True)
class WorldInfo:
    """One worker's place in the job: its ranks, the job's sizes, and the rendezvous."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    node_rank: int = 0
    restart_count: int = 0
    master_addr: str = DEFAULT_MASTER_ADDR
    master_port: int = DEFAULT_MASTER_PORT

    @property
    def is_main(self) -> bool:
        """True on rank 0, the worker that saves checkpoints, logs and exports."""
        return self.rank == 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WorldInfo:
        """Read the torchrun variables; an unset or empty one takes the single-process
        default. Raises ``ValueError`` naming the variable whose value is not an
        integer or out of range."""
        env = _Env(environ)
        world_size = env.integer("WORLD_SIZE", 1, low=1)
        local_world_size = env.integer("LOCAL_WORLD_SIZE", 1, low=1)
        if local_world_size > world_size:
            raise ValueError(
                f"LOCAL_WORLD_SIZE={local_world_size} is larger than WORLD_SIZE={world_size}"
            )
        node_var = "GROUP_RANK" if env.get("GROUP_RANK") is not None else "NODE_RANK"
        # A TrainJob's gang count: torchrun, which starts the processes of a node with
        # several, sets TORCHELASTIC_RESTART_COUNT to its own count (0) over the
        # platform's, so the platform passes it as CNAI_RESTART_COUNT too.
        restart_var = (
            "CNAI_RESTART_COUNT"
            if env.get("CNAI_RESTART_COUNT") is not None
            else "TORCHELASTIC_RESTART_COUNT"
        )
        return cls(
            rank=env.integer("RANK", 0, low=0, below=("WORLD_SIZE", world_size)),
            world_size=world_size,
            local_rank=env.integer(
                "LOCAL_RANK", 0, low=0, below=("LOCAL_WORLD_SIZE", local_world_size)
            ),
            local_world_size=local_world_size,
            node_rank=env.integer(node_var, 0, low=0),
            restart_count=env.integer(restart_var, 0, low=0),
            master_addr=env.get("MASTER_ADDR") or DEFAULT_MASTER_ADDR,
            master_port=env.integer("MASTER_PORT", DEFAULT_MASTER_PORT, low=1, high=65535),
        )


def world_info() -> WorldInfo:
    """This process's :class:`WorldInfo`, from ``os.environ``."""
    return WorldInfo.from_env()


class _Env:
    """Reads and checks integer variables, each error naming its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def get(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def integer(
        self,
        name: str,
        default: int,
        *,
        low: int,
        high: int | None = None,
        below: tuple[str, int] | None = None,
    ) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise ValueError(f"{name}={value} is out of range: it must be {bounds}")
        if below is not None and value >= below[1]:
            raise ValueError(f"{name}={value} must be less than {below[0]}={below[1]}")
        return value
