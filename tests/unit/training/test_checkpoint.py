"""Checkpoints: atomic saves, pruning, resuming past damaged files, rank 0 only."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
import torch

from cnai.training import checkpoint
from cnai.training.checkpoint import checkpoint_dir, latest_step, load_latest, save


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 0 of 1 and no platform directory, whatever the environment running tests."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "CNAI_CHECKPOINT_DIR"):
        monkeypatch.delenv(name, raising=False)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_then_load_latest(tmp_path: Path) -> None:
    weights = torch.arange(4.0)
    path = save({"weights": weights, "epoch": 7}, 7, directory=tmp_path)
    assert path == tmp_path / "ckpt-0000000007.pt"
    found = load_latest(tmp_path)
    assert found is not None
    assert (found.step, found.path, found.state["epoch"]) == (7, path, 7)
    assert torch.equal(found.state["weights"], weights)
    assert names(tmp_path) == ["ckpt-0000000007.pt"]  # no temporary file left


def test_an_empty_directory_has_nothing_to_resume(tmp_path: Path) -> None:
    assert load_latest(tmp_path / "new") is None
    assert latest_step(tmp_path / "new") is None
    assert (tmp_path / "new").is_dir()


def test_a_crash_leaves_the_older_checkpoint_to_resume_from(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    save({"epoch": 1}, 1, directory=tmp_path)
    good = save({"epoch": 2}, 2, directory=tmp_path)
    newest = save({"epoch": 3}, 3, directory=tmp_path)
    assert good is not None
    assert newest is not None
    # A save cut short, and a newest checkpoint damaged after the fact.
    (tmp_path / ".ckpt-tmp-0123.partial").write_bytes(b"PK\x03\x04 half a zip")
    newest.write_bytes(newest.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="cnai.training.checkpoint"):
        found = load_latest(tmp_path)
    assert found is not None
    assert (found.step, found.path, found.state) == (2, good, {"epoch": 2})
    assert "ckpt-0000000003.pt" in caplog.text
    assert latest_step(tmp_path) == 3  # from names alone: the damaged file still counts


def test_an_empty_newest_file_is_skipped(tmp_path: Path) -> None:
    save({"epoch": 1}, 1, directory=tmp_path)
    (tmp_path / "ckpt-0000000002.pt").touch()
    found = load_latest(tmp_path)
    assert found is not None
    assert found.step == 1


def test_nothing_loads_means_nothing_to_resume(tmp_path: Path) -> None:
    (tmp_path / "ckpt-0000000001.pt").write_bytes(b"garbage")
    assert load_latest(tmp_path) is None


def test_a_failed_save_leaves_the_previous_checkpoints_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save({"epoch": 1}, 1, directory=tmp_path)

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save({"epoch": 2}, 2, directory=tmp_path)
    assert names(tmp_path) == ["ckpt-0000000001.pt"]


@pytest.mark.parametrize(
    ("keep", "left"),
    [
        pytest.param(3, [3, 4, 5], id="keep-3-of-5"),
        pytest.param(1, [5], id="keep-only-the-newest"),
        pytest.param(None, [1, 2, 3, 4, 5], id="keep-none-keeps-all"),
    ],
)
def test_keep_prunes_the_oldest(tmp_path: Path, keep: int | None, left: list[int]) -> None:
    for step in range(1, 6):
        save({"epoch": step}, step, directory=tmp_path, keep=keep)
    assert names(tmp_path) == [checkpoint.checkpoint_name(s) for s in left]


def test_steps_order_as_numbers_not_names(tmp_path: Path) -> None:
    for step in (9, 10):
        save({"epoch": step}, step, directory=tmp_path)
    # A name written without the padding still sorts by its number.
    torch.save({"epoch": 100}, tmp_path / "ckpt-100.pt")
    assert latest_step(tmp_path) == 100
    save({"epoch": 11}, 11, directory=tmp_path, keep=2)
    assert names(tmp_path) == ["ckpt-0000000011.pt", "ckpt-100.pt"]
    found = load_latest(tmp_path)
    assert found is not None
    assert found.step == 100


def test_other_files_are_not_checkpoints(tmp_path: Path) -> None:
    for name in ("model.pt", "ckpt-7.pt.bak", "ckpt-x.pt", ".ckpt-tmp-1.partial"):
        (tmp_path / name).write_bytes(b"x")
    save({"epoch": 1}, 1, directory=tmp_path, keep=1)
    assert latest_step(tmp_path) == 1
    assert "model.pt" in names(tmp_path)


def test_only_rank_0_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert save({"epoch": 1}, 1, directory=tmp_path) is None
    assert names(tmp_path) == []
    assert save({"epoch": 1}, 1, directory=tmp_path, only_main=False) is not None
    monkeypatch.setenv("RANK", "0")
    assert save({"epoch": 2}, 2, directory=tmp_path) is not None
    assert latest_step(tmp_path) == 2


def test_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".ckpt-tmp-old.partial", tmp_path / ".ckpt-tmp-new.partial"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    two_minutes_ago = time.time() - 120
    os.utime(stale, (two_minutes_ago, two_minutes_ago))
    save({"epoch": 1}, 1, directory=tmp_path)
    assert not stale.exists()
    assert fresh.exists()  # maybe a save in progress in another process


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"step": -1}, "step must be at least 0", id="negative-step"),
        pytest.param({"step": 1, "keep": 0}, "keep must be at least 1", id="keep-0"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        save({}, directory=tmp_path, **kwargs)


def test_the_directory_comes_from_the_argument_then_the_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert checkpoint_dir() == Path("checkpoints")
    monkeypatch.setenv("CNAI_CHECKPOINT_DIR", str(tmp_path / "platform"))
    assert checkpoint_dir() == tmp_path / "platform"
    assert checkpoint_dir(tmp_path / "mine") == tmp_path / "mine"
    assert all((tmp_path / d).is_dir() for d in ("checkpoints", "platform", "mine"))
    save({"epoch": 1}, 1)
    assert latest_step(tmp_path / "platform") == 1
