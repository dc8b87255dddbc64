"""examples/digits/train.py under real torchrun with 2 workers: it learns, it exports a
TorchScript model that predicts, a second launch resumes where the first stopped, and so
do workers that torchrun restarts after one was killed.

No cnai server is involved (the script must run without one), so these tests carry no
``integration`` marker.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from harness import free_port
from sklearn.datasets import load_digits

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "digits" / "train.py"
LAUNCHER_VARS = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR"}


def torchrun_command(*args: str, launcher: tuple[str, ...] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        *launcher,
        str(SCRIPT),
        *args,
    ]


def clean_env(checkpoints: Path) -> dict[str, str]:
    """This environment without cnai's or a launcher's variables, plus the checkpoint dir."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CNAI_") and k not in LAUNCHER_VARS
    }
    env["CNAI_CHECKPOINT_DIR"] = str(checkpoints)
    return env


@contextlib.contextmanager
def launched(
    checkpoints: Path, *args: str, launcher: tuple[str, ...] = ()
) -> Iterator[subprocess.Popen[str]]:
    """torchrun with the example on 2 workers, in a session of its own so that a test
    that fails leaves no worker behind."""
    with subprocess.Popen(
        torchrun_command(*args, launcher=launcher),
        env=clean_env(checkpoints),
        cwd=checkpoints.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


def torchrun(checkpoints: Path, *args: str) -> str:
    """Run the example to the end; its output (stdout and stderr) once it exits 0."""
    with launched(checkpoints, *args) as process:
        output, _ = process.communicate(timeout=100)
    assert process.returncode == 0, output
    return output


def epochs_printed(output: str, restart: int = 0) -> list[int]:
    line = rf"^epoch (\d+) loss \S+ accuracy \S+ world 2 restart {restart}$"
    return [int(n) for n in re.findall(line, output, re.M)]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_trains_to_95_percent_and_exports_a_model_that_predicts(tmp_path: Path) -> None:
    output = torchrun(tmp_path / "ckpt")
    assert epochs_printed(output) == list(range(1, 13))  # once each: rank 0 prints
    accuracy = re.search(r"^test accuracy (\S+)$", output, re.M)
    assert accuracy is not None, output
    assert float(accuracy.group(1)) >= 0.95, output
    assert f"exported {tmp_path / 'ckpt' / 'model.pt'}" in output
    assert "resumed" not in output

    model = torch.jit.load(tmp_path / "ckpt" / "model.pt")
    digits = load_digits()  # raw rows, as the model takes them
    with torch.no_grad():
        logits = model(torch.as_tensor(digits.data, dtype=torch.float32))
    assert logits.shape == (len(digits.target), 10)
    predicted = logits.argmax(dim=1).numpy()
    assert (predicted == digits.target).mean() >= 0.95


def test_a_second_launch_resumes_after_the_last_checkpoint(tmp_path: Path) -> None:
    first = torchrun(tmp_path / "ckpt", "--epochs", "3")
    assert epochs_printed(first) == [1, 2, 3]
    export = tmp_path / "out" / "digits.pt"

    second = torchrun(tmp_path / "ckpt", "--epochs", "5", "--export", str(export))
    assert "resumed from epoch 3" in second
    assert epochs_printed(second) == [4, 5]
    assert f"exported {export}" in second
    assert export.is_file()
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("ckpt-*.pt")) == [
        "ckpt-0000000003.pt",
        "ckpt-0000000004.pt",
        "ckpt-0000000005.pt",
    ]


def test_torchrun_restarts_a_killed_worker_which_resumes(tmp_path: Path) -> None:
    """``torchrun --max-restarts`` restarts both workers when one dies; they resume from
    the last checkpoint rather than start over (and do not hang joining the group)."""
    with launched(
        tmp_path / "ckpt", "--epochs", "5", "--epoch-sleep", "1", launcher=("--max-restarts", "1")
    ) as process:
        assert process.stdout is not None
        before = []
        for line in process.stdout:
            before.append(line)
            if line.startswith("epoch 2 "):
                break
        assert any(line.startswith("epoch 2 ") for line in before), "".join(before)
        workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(workers) == 2, "".join(before)
        os.kill(int(workers[0]), signal.SIGKILL)
        after, _ = process.communicate(timeout=90)
        assert process.returncode == 0, "".join(before) + after

    resumed = re.search(r"^resumed from epoch (\d+)$", after, re.M)
    assert resumed is not None, after
    done = int(resumed.group(1))
    assert done >= 2
    assert epochs_printed(after, restart=1) == list(range(done + 1, 6))
    assert epochs_printed(after, restart=0) == list(range(3, done + 1))  # after the kill
