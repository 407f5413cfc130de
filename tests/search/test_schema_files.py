"""Atomic writes stay atomic when several worker processes write the same run file, and follow nothing
planted in a shared run folder."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from search.data.overview import save_overview
from search.schema import atomic_path, private_tmp, write_json


def _write_many(path: str, n: int) -> None:
    for i in range(n):
        save_overview({"counts": np.arange(2000) + i}, Path(path))
        write_json(Path(path).with_suffix(".json"), {"i": i})


def test_two_processes_writing_one_overview_never_collide(tmp_path: Path) -> None:
    path = tmp_path / "data_overview.npz"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(path), 150)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    with np.load(path) as npz:
        assert len(npz["counts"]) == 2000
    assert not list(tmp_path.glob(".tmp-*"))


def test_private_tmp_keeps_the_suffix_and_names_the_process(tmp_path: Path) -> None:
    tmp = private_tmp(tmp_path / "model.keras")
    assert tmp.parent == tmp_path and tmp.name.endswith("model.keras") and tmp.name != "model.keras"


def _plant(folder: Path, name: str, victim: Path) -> Path:
    """A symlink at the temporary name this module used before (``.tmp-<pid>-<name>``), aimed at ``victim``."""
    planted = folder / f".tmp-{os.getpid()}-{name}"
    planted.symlink_to(victim)
    return planted


def test_a_symlink_planted_at_a_predictable_temporary_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = [_plant(tmp_path, name, victim) for name in ("best_config.json", "data_overview.npz")]
    write_json(tmp_path / "best_config.json", {"a": 1})
    save_overview({"counts": np.arange(3)}, tmp_path / "data_overview.npz")
    assert victim.read_text() == "precious" and json.loads((tmp_path / "best_config.json").read_text()) == {"a": 1}
    with np.load(tmp_path / "data_overview.npz") as npz:
        assert npz["counts"].tolist() == [0, 1, 2]
    assert all(p.is_symlink() and p.resolve() == victim for p in planted)  # left alone, not written through
    assert not (tmp_path / "best_config.json").is_symlink()


def test_temporary_names_are_new_files_nobody_can_predict(tmp_path: Path) -> None:
    first, second = private_tmp(tmp_path / "model.keras"), private_tmp(tmp_path / "model.keras")
    assert first != second and f".tmp-{os.getpid()}-model.keras" not in (first.name, second.name)
    for tmp in (first, second):
        mode = tmp.lstat().st_mode
        assert stat.S_ISREG(mode) and tmp.stat().st_size == 0
        assert stat.S_IMODE(mode) == 0o666 & ~_umask()  # what open() gives, not mkstemp's 0600
    folder = private_tmp(tmp_path / "best_model_savedmodel", folder=True)
    assert folder.is_dir() and folder.name.endswith("-best_model_savedmodel")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~_umask()


def test_a_temporary_file_swapped_for_a_symlink_is_not_renamed_into_place(tmp_path: Path) -> None:
    victim, target = tmp_path / "victim.txt", tmp_path / "test_report.json"
    victim.write_text("precious")
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.unlink()
        tmp.symlink_to(victim)
    assert not os.path.lexists(target) and victim.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["victim.txt"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
