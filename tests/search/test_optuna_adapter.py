"""The private Optuna calls of ``search/optuna_adapter.py`` and the trial lifecycle built on them, on the
storages a search uses (in memory, SQLite with heartbeats); ``pyproject.toml`` bounds Optuna to the
versions this file passes on."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from search.engine.lifecycle import TrialFailed, TrialRun
from search.engine.outcome import Scored
from search.optuna_adapter import (
    all_trials,
    create_running_trial,
    fail_trial,
    fixed_params,
    heartbeat,
    label_trial,
    study_user_attrs,
)
from search.schema import TrialKey

X = FloatDistribution(0.0, 1.0)


def _storages(tmp_path: Path) -> list[optuna.storages.BaseStorage]:
    sqlite = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=3)
    return [optuna.storages.InMemoryStorage(), sqlite]


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "sqlite"])
def test_every_private_call_works_on_this_optuna(tmp_path: Path, kind: int) -> None:
    study = optuna.create_study(storage=_storages(tmp_path)[kind], direction="maximize")
    study.set_user_attr("tie_break", "loss")
    study.enqueue_trial({"x": 0.25})
    made = create_running_trial(study, {"x": 0.5}, {"x": X}, {TrialKey.CONTINUES: 7})
    frozen = study.trials[made.number]
    # runs now although a trial was queued before it, with its parameters marked as given
    assert frozen.state == TrialState.RUNNING and frozen.params == {"x": 0.5} and made.number == 1
    assert fixed_params(frozen) == {"x": 0.5} and frozen.user_attrs[TrialKey.CONTINUES] == 7
    with heartbeat(study, made):
        study.tell(made, 0.9)
    queued = study.ask()
    assert queued.suggest_float("x", 0.0, 1.0) == 0.25
    assert fixed_params(study.trials[queued.number]) == {"x": 0.25}
    label_trial(study, study.trials[queued.number], TrialKey.NEAR, 1)
    assert study.trials[queued.number].user_attrs[TrialKey.NEAR] == 1
    assert [t.number for t in all_trials(study, (TrialState.COMPLETE,))] == [1]
    assert study_user_attrs(study) == {"tie_break": "loss"}
    failed = fail_trial(study, study.trials[queued.number], TrialKey.FAIL_REASON, "its worker process died")
    assert failed is not None and failed.state == TrialState.FAIL
    assert failed.user_attrs[TrialKey.FAIL_REASON] == "its worker process died"
    assert fail_trial(study, study.trials[made.number], TrialKey.FAIL_REASON, "late") is None  # finished already
    sampled = study.ask()
    sampled.suggest_float("x", 0.0, 1.0)
    assert fixed_params(study.trials[sampled.number]) is None


def test_a_heartbeat_keeps_a_long_trial_alive_and_its_absence_fails_a_dead_one(tmp_path: Path) -> None:
    storage = _storages(tmp_path)[1]
    study = optuna.create_study(storage=storage, direction="maximize")
    alive = study.ask()
    dead = study.ask()
    with heartbeat(study, alive), heartbeat(study, dead):
        time.sleep(1.5)
    with heartbeat(study, alive):
        time.sleep(3.5)  # past the grace period: only the trial without a heartbeat is stale
        optuna.storages.fail_stale_trials(study)
        states = {t.number: t.state for t in study.trials}
    assert states == {alive.number: TrialState.RUNNING, dead.number: TrialState.FAIL}


def test_trial_run_tells_each_outcome_and_requeues_open_trials_on_ctrl_c(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    errors = tmp_path / "errors.log"

    def fails() -> Scored:
        raise TrialFailed("nan")

    def crashes() -> Scored:
        raise RuntimeError("out of memory")

    def prunes() -> Scored:
        raise optuna.TrialPruned()

    with TrialRun(study, errors) as run:
        for work in (lambda: Scored(0.5), fails, crashes, prunes):
            trial = run.ask()
            trial.suggest_float("x", 0.0, 1.0)
            run.run(trial, work)
    assert [t.state for t in run.done] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.PRUNED]
    assert "out of memory" in run.done[2].user_attrs[TrialKey.FAIL_REASON] and "RuntimeError" in errors.read_text()

    with pytest.raises(KeyboardInterrupt), TrialRun(study, errors) as run:
        trial = run.ask()
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr(TrialKey.POINT, "lean2")
        raise KeyboardInterrupt
    assert run.done[0].state == TrialState.FAIL and run.done[0].user_attrs[TrialKey.STOP_REASON] == "interrupted"
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs[TrialKey.POINT] == "lean2"
    assert fixed_params(waiting[0]) == trial.params  # the same configuration, run first on resume

    with TrialRun(study, errors) as run:  # a program shared by open trials fails: they fail, the search goes on
        first, second = run.ask(), run.ask()
        raise RuntimeError("the population's program failed")
    assert {t.number for t in run.done} == {first.number, second.number}
    assert all(t.state == TrialState.FAIL for t in run.done)


def test_an_error_outside_any_trial_reaches_the_caller(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    with pytest.raises(RuntimeError, match="database is down"), TrialRun(study, tmp_path / "errors.log"):
        raise RuntimeError("database is down")  # as study.ask() failing: no trial to blame, the loop must stop
