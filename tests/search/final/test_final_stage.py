"""The final stage end to end on tiny data: candidates retrained, the pick made on validation, the files
swapped in as one set."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from search.config import SearchConfig
from search.engine.loop import run_search
from search.final import deploy, retrain_best
from search.final import retrain as retrain_module
from search.final.final_set import current_folder
from search.schema import RunFile, write_json


@pytest.mark.slow
def test_train_and_valid_refit_keeps_the_pick_made_on_validation(tiny_data: Path, tmp_path: Path) -> None:
    cfg = SearchConfig(
        data_dir=tiny_data,
        space="lenet",
        trials=2,
        epochs=1,
        final_epochs=1,
        out=tmp_path,
        study="tv",
        retrain=False,
        dashboard_every=0,
        final_candidates=2,
        final_data="train+valid",
        export=(),
        steps_per_execution=1,
    )
    outcome = run_search(cfg)
    config = retrain_best(outcome.study, outcome.dataset, cfg)
    assert config["final_data"] == "train+valid"
    picked = config["final_model"]
    single = next(o for o in config["final_options"] if o["name"] == "single")
    assert picked["val_correct"] >= single["val_correct"]  # never worse than the single best on validation
    assert [m["trial_number"] for m in config["members"]] == list(picked["members"])  # the refit members
    report = json.loads((tmp_path / "tv" / "test_report.json").read_text())
    assert report["final_model"]["name"] == picked["name"] and report["n_test"] == 172


@pytest.mark.slow
def test_the_final_stage_swaps_in_one_whole_set(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = SearchConfig(
        data_dir=tiny_data,
        space="lenet",
        trials=1,
        epochs=1,
        final_epochs=1,
        out=tmp_path,
        study="set",
        retrain=False,
        dashboard_every=0,
        final_candidates=1,
        export=(),
        steps_per_execution=1,
    )
    outcome = run_search(cfg)
    config = retrain_best(outcome.study, outcome.dataset, cfg)
    run, names = (
        tmp_path / "set",
        {RunFile.BEST_MODEL, RunFile.FINAL_MEMBERS, RunFile.TEST_REPORT, RunFile.MISCLASSIFIED, RunFile.BEST_CONFIG},
    )
    first = current_folder(run)
    assert first is not None and first.parent == run and first.name.startswith(RunFile.FINAL_SET_PREFIX)
    assert set(os.listdir(first)) == names
    assert all(os.readlink(run / name) == f"{RunFile.FINAL_DIR}/{name}" for name in names)
    assert {m["file"] for m in config["members"]} == set(os.listdir(run / RunFile.FINAL_MEMBERS))
    with np.load(run / RunFile.DATA_OVERVIEW) as overview:
        assert overview["counts_test"].sum() == 172
    files = [run / name for name in names - {RunFile.FINAL_MEMBERS}]
    before = {path: path.read_bytes() for path in files}

    def interrupted(path: Path, payload: dict) -> Path:  # Ctrl-C at the set's last file
        if Path(path).name == RunFile.BEST_CONFIG:
            raise KeyboardInterrupt
        return write_json(path, payload)

    monkeypatch.setattr(retrain_module, "write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        retrain_best(outcome.study, outcome.dataset, cfg)
    assert current_folder(run) == first and {path: path.read_bytes() for path in files} == before
    assert not [n for n in os.listdir(run) if n.startswith((RunFile.FINAL_BUILD_PREFIX, ".tmp-"))]
    monkeypatch.undo()

    def export_interrupted(*args: object, **kwargs: object) -> list:
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy, "export_model", export_interrupted)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the exports keeps the new model without them
        retrain_best(outcome.study, outcome.dataset, dataclasses.replace(cfg, export=("onnx",)))
    second = current_folder(run)
    assert second is not None and second != first and not first.exists() and set(os.listdir(second)) == names
    assert json.loads((run / RunFile.BEST_CONFIG).read_text())["trial_number"] == config["trial_number"]
