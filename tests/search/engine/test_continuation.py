"""Continuing the best trial the time cap cut short: which trials qualify, the weights a continuation
starts from, and the trial it becomes (ahead of the queue, labelled, its epochs counted on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import spaces
from search.config import SearchConfig
from search.data import load_dataset
from search.engine.continuation import (
    RESTART_LR_SCALE,
    continuation_attrs,
    restart_values,
    run_continuation,
    worth_continuing,
)
from search.engine.kept_models import kept_models
from search.engine.lifecycle import TrialRun
from search.engine.loop import run_search
from search.engine.objective import Objective
from search.engine.outcome import TrialPlan
from search.engine.trainer import TrainResult
from search.schema import TrialKey, origin_of


@pytest.fixture(scope="module")
def dataset(tiny_data: Path):  # -> Dataset
    return load_dataset(tiny_data, n_classes=43)


def test_only_the_best_trial_cut_by_the_cap_with_two_epochs_and_budget_left_is_continued() -> None:
    assert worth_continuing("time_cap", 0.9, 6, 10, 0.8, None, 20.0)
    assert worth_continuing("time_cap", 0.9, 6, 10, None, 100.0, 20.0)  # the first trial; time for 5 epochs
    assert worth_continuing("time_cap", 0.8, 6, 10, 0.8, None, 20.0)  # ties count
    assert not worth_continuing("time_cap", 0.7, 6, 10, 0.8, None, 20.0)  # not the best
    assert not worth_continuing("early_stop", 0.9, 6, 10, 0.8, None, 20.0)  # stopped for a reason
    assert not worth_continuing("time_cap", 0.9, 10, 10, 0.8, None, 20.0)  # no epochs left
    assert not worth_continuing("time_cap", 0.9, 9, 10, 0.8, None, 20.0)  # one: a restart with no room to anneal
    assert worth_continuing("time_cap", 0.9, 8, 10, 0.8, None, 20.0)
    assert not worth_continuing("time_cap", 0.9, 6, 10, 0.8, 30.0, 20.0)  # the search ends first


def test_a_continuation_restarts_the_cosine_lower() -> None:
    assert restart_values({"learning_rate": 1e-3, "batch_size": 64}) == {
        "learning_rate": pytest.approx(1e-3 * RESTART_LR_SCALE),
        "batch_size": 64,
    }
    assert restart_values({"batch_size": 64}) == {"batch_size": 64}  # a space without the setting


def _config(folder: Path, **overrides) -> SearchConfig:
    settings = {
        "data_dir": folder,
        "out": folder,
        "space": "lenet",
        "epochs": 3,
        "retrain": False,
        "dashboard_every": 0,
        **overrides,
    }
    return SearchConfig(**settings)


def _result(stop_reason: str, best: float, epochs: int = 1) -> TrainResult:
    return TrainResult(
        val_curve=[best] * epochs,
        train_curve=[best] * epochs,
        best_epoch=1,
        epochs_run=epochs,
        seconds=0.5 * epochs,
        stop_reason=stop_reason,
        val_loss_curve=[1.0] * epochs,
    )


def test_the_best_trial_cut_by_the_cap_is_kept_and_continued_from_its_weights(dataset, tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    objective = Objective(dataset, spaces.get_space("lenet"), cfg, target=10)
    study = optuna.create_study(direction="maximize")
    for stop_reason, value, kept in (("time_cap", 0.30, True), ("time_cap", 0.20, False), ("early_stop", 0.40, False)):
        trial = study.ask()
        built = objective.start(trial)
        scored = objective.finish(trial, built, _result(stop_reason, value))
        assert scored.value == value
        assert (scored.cut is not None) == kept, (stop_reason, value)
        if kept:
            cut = scored.cut
            assert cut.number == trial.number and cut.epochs_done == 1 and cut.params == trial.params
            assert all(np.array_equal(a, b) for a, b in zip(cut.weights, built.model.get_weights()))
        study.tell(trial, value)

    # The continuation is a new running trial with the parent's parameters, built on its weights.
    study.enqueue_trial(cut.params)  # a queued trial (a named point, say) does not go first
    trial = TrialRun(study, tmp_path / "errors.log").run_now(cut.params, cut.distributions, continuation_attrs(cut))
    assert trial.number == 4 and trial.user_attrs[TrialKey.CONTINUES] == 0  # after the queued #3
    assert origin_of(trial.user_attrs) == "continues #0"
    built = objective.start(trial, TrialPlan(resume=cut))
    assert built.resumed is cut and built.epochs == cfg.epochs - 1
    assert all(np.array_equal(a, b) for a, b in zip(built.model.get_weights(), cut.weights))
    assert trial.params == cut.params


def test_run_continuation_trains_the_epochs_left_and_reports_them_after_the_parents(dataset, tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    objective = Objective(dataset, spaces.get_space("lenet"), cfg, target=10)
    study = optuna.create_study(direction="maximize")
    parent = study.ask()
    built = objective.start(parent)
    cut = objective.finish(parent, built, _result("time_cap", 0.3)).cut
    study.tell(parent, 0.3)
    study.enqueue_trial(dict(parent.params))

    done, left = run_continuation(study, objective, tmp_path / "errors.log", TrialPlan(resume=cut))
    assert done.state == TrialState.COMPLETE, done.user_attrs.get(TrialKey.FAIL_REASON)
    assert done.number == 2 and done.params == parent.params  # ahead of the queued #1
    assert done.user_attrs[TrialKey.CONTINUES] == 0 and done.user_attrs[TrialKey.RESUMED_EPOCHS] == 1
    assert 1 <= done.user_attrs[TrialKey.EPOCHS] <= cfg.epochs - 1
    assert min(done.intermediate_values) == 2  # its first epoch is the parent's second
    assert left is None  # not cut: it finished its epochs
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.WAITING, TrialState.COMPLETE]


def test_the_search_continues_a_cut_trial_next(tiny_data: Path, tmp_path: Path) -> None:
    # A 4 s per-trial cap (a tenth of 40 s) cannot pay for 200 epochs: the first named point is cut,
    # and the next trial trains it on, ahead of the second named point; the study's target of two
    # finished trials ends the search there.
    cfg = _config(tiny_data, out=tmp_path, trials=2, timeout=40.0, trial_time_fraction=0.1, epochs=200)
    study = run_search(cfg).study
    first, queued, second = study.trials
    assert queued.state == TrialState.WAITING and TrialKey.POINT in queued.user_attrs
    assert first.user_attrs[TrialKey.STOP_REASON] == "time_cap" and TrialKey.POINT in first.user_attrs
    assert second.user_attrs[TrialKey.CONTINUES] == first.number and second.params == first.params
    assert second.user_attrs[TrialKey.RESUMED_EPOCHS] == first.user_attrs[TrialKey.EPOCHS]
    # A continuation keeps its model like a solo trial: the cut parent's and its own are both kept.
    assert {k.trial_number for k in kept_models(cfg.run_dir)} == {first.number, second.number}

    off = run_search(
        _config(
            tiny_data,
            out=tmp_path,
            study="off",
            trials=2,
            timeout=40.0,
            trial_time_fraction=0.1,
            epochs=200,
            continue_cut=False,
        )
    ).study
    assert not any(TrialKey.CONTINUES in t.user_attrs for t in off.trials)
