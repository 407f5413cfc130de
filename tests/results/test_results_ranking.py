"""The dashboard ranks trials with the search's one rule (``search.schema``): equal validation
accuracies are broken by the lower validation loss, and its top-trials table, summary, curves and
exported config name the same best trial as ``schema.best_trial``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))
import results_fakes as fk

from results import best_config, fig_summary, fig_trials, write_dashboard
from search.schema import TrialKey, best_trial, best_val_loss, ranked_trials


def _tied_study() -> optuna.Study:
    """Four trials at 0.95 validation accuracy, told apart only by their best epoch's loss."""
    study = fk.new_study(name="tied")
    fk.add_trial(study, curve=[0.5, 0.95], attrs={TrialKey.VAL_LOSS_CURVE: [0.9, 0.30]})  # 0
    fk.add_trial(study, curve=[0.5, 0.95], attrs={TrialKey.VAL_LOSS_CURVE: [0.8, 0.10]})  # 1: the best
    fk.add_trial(study, curve=[0.6, 0.95])  # 2: no loss recorded (an older search): last of the tied
    fk.add_trial(study, curve=[0.4, 0.95], attrs={TrialKey.VAL_LOSS_CURVE: [0.7, 0.20]})  # 3
    fk.add_trial(study, curve=[0.90], attrs={TrialKey.VAL_LOSS_CURVE: [0.05]})  # 4: lower accuracy
    fk.add_trial(study, TrialState.PRUNED, curve=[0.3])  # 5: not ranked
    return study


def _table_trial_numbers(html: str) -> list[int]:
    """Trial numbers of the dashboard's top-trials table, in the order the page lists them."""
    table = re.search(r'<table class="sortable">.*?</table>', html, re.S)
    assert table, "no top-trials table"
    return [int(n) for n in re.findall(r'<tr><td data-v="(\d+)">', table.group(0))]


def test_top_trials_break_accuracy_ties_by_validation_loss_like_the_search(tmp_path: Path) -> None:
    study = _tied_study()
    best = best_trial(study)
    assert best is not None and best.number == 1
    info = fig_summary._top_trials_info(study)
    order = [row[0] for row in info.rows]
    assert order == [1, 3, 0, 2, 4] == [t.number for t in ranked_trials(study)]
    assert order[0] == best.number
    assert info.n_complete == 5

    column = info.columns.index("val_loss")
    assert info.columns[:3] == ["trial", "val_accuracy", "val_loss"]
    losses = [row[column] for row in info.rows]
    assert losses[3] is None  # trial 2 recorded no loss
    assert [losses[i] for i in (0, 1, 2, 4)] == pytest.approx([0.10, 0.20, 0.30, 0.05])
    assert losses == [best_val_loss(study.trials[n]) for n in order]
    assert fig_summary._cell_text("val_loss", None) == "\u2014"

    # The summary, the highlighted learning curve and the exported config name the same trial.
    assert fig_summary._summary_info(study).best_trial == best.number
    assert [c.number for c in fig_trials._curves_info(study).curves if c.is_best] == [best.number]
    assert best_config(study, None)["trial_number"] == best.number

    html = write_dashboard(study, tmp_path).read_text(encoding="utf-8")
    assert _table_trial_numbers(html) == order
    assert "<th>val_loss</th>" in html
    first_row = re.search(r'<table class="sortable">.*?<tbody><tr>(.*?)</tr>', html, re.S).group(1)
    assert '<td data-v="0.1">0.1</td>' in first_row
    third_tied = re.search(r'<tr><td data-v="2">.*?</tr>', html, re.S).group(0)
    assert '<td data-v="">\u2014</td>' in third_tied


def test_multi_objective_top_row_is_the_pareto_best_even_when_a_dominated_trial_has_lower_loss(tmp_path: Path) -> None:
    study = fk.new_study(["maximize", "minimize"], name="multi-tied")
    fk.add_trial(study, curve=[0.95], attrs={TrialKey.PARAMS: 9000, TrialKey.VAL_LOSS_CURVE: [0.10]})  # dominated
    fk.add_trial(study, curve=[0.95], attrs={TrialKey.PARAMS: 5000, TrialKey.VAL_LOSS_CURVE: [0.20]})  # the best
    fk.add_trial(study, curve=[0.90], attrs={TrialKey.PARAMS: 1000, TrialKey.VAL_LOSS_CURVE: [0.30]})  # on the front
    best = best_trial(study)
    assert best is not None and best.number == 1
    assert {t.number for t in study.best_trials} == {1, 2}
    info = fig_summary._top_trials_info(study)
    assert [row[0] for row in info.rows] == [1, 0, 2]
    assert info.columns[:4] == ["trial", "val_accuracy", "params", "val_loss"]
    assert fig_summary._summary_info(study).best_trial == best.number
    assert best_config(study, None)["trial_number"] == best.number
    assert _table_trial_numbers(write_dashboard(study, tmp_path).read_text(encoding="utf-8"))[0] == best.number


def test_without_validation_losses_ties_go_to_the_earlier_trial() -> None:
    study = fk.new_study(name="no-loss")
    for curve in ([0.9], [0.95], [0.95], [0.8]):
        fk.add_trial(study, curve=curve)
    assert best_trial(study).number == 1
    info = fig_summary._top_trials_info(study)
    assert [row[0] for row in info.rows] == [1, 2, 0, 3]
    assert all(row[info.columns.index("val_loss")] is None for row in info.rows)
