"""Atomic writes stay atomic when several worker processes write the same run file."""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np

from search.data.overview import save_overview
from search.schema import private_tmp, write_json


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
