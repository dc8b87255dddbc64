"""A Ray head on this machine for ``cnai up --runtime ray`` without an address (``auto``).

The head is started with ``ray start --head`` as its own daemon processes, not inside
the platform's process (``ray.init()`` without an address): a platform restart then
keeps the Ray cluster and the pods running on it, as the local runtime keeps its
processes, and the restarted platform adopts them. Its address is kept in
``$CNAI_HOME/ray/head.json``; the next ``cnai up`` reuses the head while it answers.
It outlives ``cnai down`` for the same reason; ``ray stop`` ends it (docs/ray.md).

Ray itself is not imported here: this runs Ray's command line.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

HEAD_FILE = "head.json"
START_TIMEOUT_S = 180.0


class RayHeadError(Exception):
    """The local Ray head cannot be started; the message says why."""


def ray_executable() -> str:
    """Ray's command line next to this interpreter (its virtual environment), else on PATH."""
    beside = Path(sys.executable).with_name("ray")
    if beside.exists():
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise RayHeadError("the `ray` command is not installed (pip install 'ray[default]')")
    return found


def _answers(address: str, timeout: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_head(state_dir: Path) -> str:
    """The address (``host:port``) of this machine's Ray head: the one recorded in
    ``state_dir`` if it still answers, else a new one started now."""
    state = state_dir / HEAD_FILE
    try:
        address = str(json.loads(state.read_text())["address"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        address = ""
    if address and _answers(address):
        return address
    address = f"127.0.0.1:{_free_port()}"
    cmd = [
        ray_executable(),
        "start",
        "--head",
        f"--port={address.rpartition(':')[2]}",
        "--node-ip-address=127.0.0.1",
        "--disable-usage-stats",
        "--include-dashboard=false",
    ]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise RayHeadError(f"`ray start --head` did not finish in {START_TIMEOUT_S:.0f}s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-10:])
        raise RayHeadError(f"`ray start --head` failed (exit {done.returncode}):\n{tail}")
    state_dir.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"address": address}))
    return address
