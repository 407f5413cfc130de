"""Study mechanics without training: targets, retries, the hp adapter, samplers, redaction."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from cli.parser import add_settings
from search.config import SearchConfig
from search.engine.hp_adapter import OptunaHyperParameters
from search.engine.study import retry_once, settle_target
from search.errors import UserError
from search.sampling import PRUNERS, SAMPLERS, make_pruner, make_sampler
from search.sampling.local_search import LocalSearchSampler
from search.sampling.registry import GP_STARTUP
from search.sampling.screen import SCREEN_SHARE, ScreenPruner
from search.schema import redact


def _add_finished(study: optuna.Study, n: int) -> None:
    for _ in range(n):
        study.add_trial(create_trial(value=0.5, params={}, distributions={}))


def test_trials_is_a_shared_target_and_a_rerun_adds_a_campaign() -> None:
    study = optuna.create_study(direction="maximize")
    assert settle_target(study, 6) == 6  # first worker
    assert settle_target(study, 6) == 6  # second worker joins the same campaign
    _add_finished(study, 2)
    assert settle_target(study, 3) == 3  # interrupted campaign rerun with fewer trials
    _add_finished(study, 1)
    assert settle_target(study, 3) == 6  # campaign done: the same command adds 3 more
    assert settle_target(study, 3) == 6


def test_retry_once_requeues_the_configuration_a_single_time() -> None:
    study = optuna.create_study(direction="maximize")
    dist = {"lr": FloatDistribution(1e-4, 1e-1, log=True)}
    study.add_trial(
        create_trial(
            state=TrialState.FAIL,
            params={"lr": 0.01},
            distributions=dist,
            user_attrs={"point": "tutorial", "worker": "h:1"},
        )
    )
    retry_once(study, study.trials[0])
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].params == {"lr": 0.01}
    assert waiting[0].user_attrs == {"retry_of": 0, "point": "tutorial"}
    trial = study.ask()  # the retry runs next...
    study.tell(trial, state=TrialState.FAIL)
    retry_once(study, study.trials[trial.number])  # ...and a second death is not retried
    assert not study.get_trials(states=(TrialState.WAITING,))


def _declare(hp: OptunaHyperParameters) -> None:
    hp.Int("filters", 16, 128, step=2, sampling="log", default=32)
    hp.Float("lr", 1e-4, 1e-1, sampling="log", default=1e-3)
    hp.Float("dropout", 0.0, 0.5, step=0.1)
    blocks = hp.Int("blocks", 1, 2)
    with hp.conditional_scope("blocks", [2]):
        hp.Choice("second", ["a", "b"])
    hp.Boolean("augment")
    assert blocks in (1, 2)


def test_adapter_maps_every_kind_and_skips_inactive_parameters() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_inactive = seen_active = False
    for _ in range(20):
        trial = study.ask()
        hp = OptunaHyperParameters(trial)
        _declare(hp)
        dists = trial.distributions
        assert dists["filters"] == CategoricalDistribution([16, 32, 64, 128])  # log + multiplicative step
        assert dists["lr"] == FloatDistribution(1e-4, 1e-1, log=True)
        assert dists["dropout"] == FloatDistribution(0.0, 0.5, step=0.1)
        assert dists["blocks"] == IntDistribution(1, 2)
        assert dists["augment"] == CategoricalDistribution([False, True])
        if trial.params["blocks"] == 1:
            assert "second" not in trial.params and "second" not in hp.values
            seen_inactive = True
        else:
            assert trial.params["second"] in ("a", "b")
            seen_active = True
        study.tell(trial, 0.0)
    assert seen_inactive and seen_active


def test_adapter_refuses_reverse_log() -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match="reverse_log"):
        OptunaHyperParameters(trial).Float("x", 0.1, 1.0, sampling="reverse_log")


def test_samplers_and_pruners_by_name() -> None:
    tpe = make_sampler("tpe", 0)
    assert type(tpe) is optuna.samplers.TPESampler and tpe._multivariate
    local = make_sampler("tpe", 0, local_share=0.5)
    assert isinstance(local, LocalSearchSampler) and local.share == 0.5
    assert type(local.base) is optuna.samplers.TPESampler and local.base._multivariate
    # A Pareto front has no single best trial to search around: no wrapper.
    assert type(make_sampler("tpe", 0, multi_objective=True, local_share=0.5)) is optuna.samplers.TPESampler
    assert type(make_sampler("random", 0)) is optuna.samplers.RandomSampler
    assert type(make_sampler("cmaes", 0)) is optuna.samplers.CmaEsSampler
    assert type(make_sampler("qmc", 0)) is optuna.samplers.QMCSampler and make_sampler("qmc", 0)._scramble
    if importlib.util.find_spec("torch") is None:  # the GP sampler needs PyTorch
        with pytest.raises(UserError, match="pip install torch"):
            make_sampler("gp", 0)
    else:
        gp = make_sampler("gp", 0)
        assert type(gp) is optuna.samplers.GPSampler and gp._n_startup_trials == GP_STARTUP
        assert type(gp._independent_sampler) is optuna.samplers.QMCSampler  # a space-filling start

    hyperband = make_pruner("hyperband", 7)
    assert type(hyperband) is optuna.pruners.HyperbandPruner
    assert (hyperband._min_resource, hyperband._max_resource, hyperband._reduction_factor) == (1, 7, 3)
    assert make_pruner("hyperband", 0)._max_resource == 1
    sha = make_pruner("sha", 7)
    assert type(sha) is optuna.pruners.SuccessiveHalvingPruner
    assert (sha._min_resource, sha._reduction_factor) == (1, 3)
    assert type(make_pruner("median", 7)) is optuna.pruners.MedianPruner
    assert type(make_pruner("none", 7)) is optuna.pruners.NopPruner
    assert type(make_pruner("screen", 7)) is ScreenPruner and make_pruner("screen", 7).share == SCREEN_SHARE
    with pytest.raises(UserError, match="unknown pruner"):
        make_pruner("magic", 7)
    with pytest.raises(UserError, match="unknown sampler"):
        make_sampler("magic", 0)
    with pytest.raises(UserError, match="cannot optimise several objectives"):
        make_sampler("cmaes", 0, multi_objective=True)


def test_cli_offers_exactly_the_registered_samplers_and_pruners() -> None:
    assert set(SAMPLERS) == {"tpe", "random", "cmaes", "gp", "qmc"}
    assert set(PRUNERS) == {"hyperband", "sha", "screen", "median", "none"}
    choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(SearchConfig)}
    assert tuple(choices["sampler"]) == tuple(SAMPLERS) and tuple(choices["pruner"]) == tuple(PRUNERS)
    parser = argparse.ArgumentParser()
    add_settings(parser, names=("sampler", "pruner"))
    offered = {a.dest: tuple(a.choices) for a in parser._actions if a.dest in ("sampler", "pruner")}
    assert offered == {"sampler": tuple(SAMPLERS), "pruner": tuple(PRUNERS)}


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://me:secret@db/x") == "postgresql://me:***@db/x"
    assert redact("sqlite:///runs/a/study.db") == "sqlite:///runs/a/study.db"


@pytest.mark.parametrize(
    "clash",
    [
        "(sqlite3.IntegrityError) UNIQUE constraint failed: alembic_version.version_num",
        "(sqlite3.OperationalError) table trial_intermediate_values already exists",
        'duplicate key value violates unique constraint "pg_type_typname_nsp_index"',
    ],
)
def test_storage_retries_when_another_process_creates_the_tables(
    clash: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search.config import SearchConfig
    from search.engine import study as study_module

    calls: list[int] = []
    real = study_module.RDBStorage

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(clash)  # the loser of the race to create Optuna's tables
        return real(*args, **kwargs)

    monkeypatch.setattr(study_module, "RDBStorage", racing)
    monkeypatch.setattr(study_module.time, "sleep", lambda seconds: None)
    cfg = SearchConfig(data_dir=tmp_path, out=tmp_path, study="race")
    assert isinstance(study_module.make_storage(cfg), real) and len(calls) == 2
