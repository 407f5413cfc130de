"""The final stage end to end on tiny data: candidates retrained, the pick made on validation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from search.config import SearchConfig
from search.engine.loop import run_search
from search.final import retrain_best


@pytest.mark.slow
def test_train_and_valid_refit_keeps_the_pick_made_on_validation(tiny_data: Path, tmp_path: Path) -> None:
    cfg = SearchConfig(data_dir=tiny_data, space="lenet", trials=2, epochs=1, final_epochs=1, out=tmp_path,
                       study="tv", retrain=False, dashboard_every=0, final_candidates=2, final_data="train+valid",
                       export=(), steps_per_execution=1)
    outcome = run_search(cfg)
    config = retrain_best(outcome.study, outcome.dataset, cfg)
    assert config["final_data"] == "train+valid"
    picked = config["final_model"]
    single = next(o for o in config["final_options"] if o["name"] == "single")
    assert picked["val_correct"] >= single["val_correct"]  # never worse than the single best on validation
    assert [m["trial_number"] for m in config["members"]] == list(picked["members"])  # the refit members
    report = json.loads((tmp_path / "tv" / "test_report.json").read_text())
    assert report["final_model"]["name"] == picked["name"] and report["n_test"] == 172
