"""Study mechanics without training: targets, retries, the hp adapter, samplers, redaction."""
from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from search.errors import UserError
from search.hp_adapter import OptunaHyperParameters
from search.study import make_pruner, make_sampler, redact, retry_once, settle_target


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
    study.add_trial(create_trial(state=TrialState.FAIL, params={"lr": 0.01}, distributions=dist,
                                 user_attrs={"point": "tutorial", "worker": "h:1"}))
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
    for name in ("tpe", "random", "cmaes", "qmc"):
        assert isinstance(make_sampler(name, 0), optuna.samplers.BaseSampler)
    for name in ("hyperband", "sha", "median", "none"):
        assert isinstance(make_pruner(name, 10), optuna.pruners.BasePruner)
    with pytest.raises(UserError, match="unknown sampler"):
        make_sampler("magic", 0)
    with pytest.raises(UserError, match="cannot optimise several objectives"):
        make_sampler("cmaes", 0, multi_objective=True)


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://me:secret@db/x") == "postgresql://me:***@db/x"
    assert redact("sqlite:///runs/a/study.db") == "sqlite:///runs/a/study.db"
