"""Local search: a share of sampled trials are neighbours of the best trial, enqueued ones untouched."""

from __future__ import annotations

import random

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search.sampling import make_sampler
from search.sampling.local_search import LocalSearchSampler, local_due, perturb
from search.schema import TrialKey

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _objective(trial: optuna.Trial) -> float:
    """A small conditional space: 'blocks' decides how many filter settings exist."""
    blocks = trial.suggest_int("blocks", 1, 3)
    filters = [trial.suggest_int(f"filters_{i}", 8, 64, step=8) for i in range(blocks)]
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    opt = trial.suggest_categorical("optimizer", ["adam", "sgd", "adamw"])
    value = sum(filters) / 200 + (opt == "adam") * 0.1 - abs(lr - 0.01)
    trial.report(value, 1)
    trial.should_prune()  # a Hyperband pruner learns its brackets here; the trials always complete
    return value


def _study(share: float, seed: int = 0, pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    base = optuna.samplers.RandomSampler(seed=seed)
    return optuna.create_study(
        direction="maximize", sampler=LocalSearchSampler(base, share=share, seed=seed), pruner=pruner
    )


# Hyperband hands samplers a view of one bracket's trials; the share and the best are the whole study's.
@pytest.mark.parametrize("pruner", [None, optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9)])
def test_half_the_sampled_trials_are_neighbours_of_the_best_so_far(pruner: optuna.pruners.BasePruner) -> None:
    study = _study(0.5, pruner=pruner)
    study.enqueue_trial({"blocks": 1, "filters_0": 8, "lr": 0.001, "optimizer": "sgd"}, user_attrs={"point": "p"})
    study.optimize(_objective, n_trials=21)
    trials = study.get_trials()
    assert TrialKey.NEAR not in trials[0].user_attrs  # the named point is never changed
    local = [t for t in trials if TrialKey.NEAR in t.user_attrs]
    assert len(local) == 10  # 20 sampled trials, every second one local
    for t in local:
        incumbent = trials[t.user_attrs[TrialKey.NEAR]]
        assert incumbent.number < t.number and incumbent.value == max(
            s.value for s in trials[: t.number] if s.value is not None
        )
        shared = set(t.params) & set(incumbent.params)
        changed = {k for k in shared if t.params[k] != incumbent.params[k]}
        assert 1 <= len(changed) <= 2, (t.params, incumbent.params)
        if "blocks" not in changed:
            assert set(t.params) == set(incumbent.params)


def test_a_share_of_zero_is_the_base_sampler_alone() -> None:
    study = _study(0.0)
    study.optimize(_objective, n_trials=8)
    assert not any(TrialKey.NEAR in t.user_attrs for t in study.get_trials())


def test_share_must_leave_room_for_the_base_sampler() -> None:
    with pytest.raises(ValueError, match="share"):
        LocalSearchSampler(optuna.samplers.RandomSampler(), share=1.0)


def test_local_trials_keep_their_share() -> None:
    for share in (0.25, 0.5, 0.75):
        assert sum(local_due(n, share) for n in range(100)) == int(100 * share)


def test_make_sampler_wraps_single_objective_studies_only() -> None:
    assert isinstance(make_sampler("tpe", 0, local_share=0.5), LocalSearchSampler)
    assert not isinstance(make_sampler("tpe", 0, multi_objective=True, local_share=0.5), LocalSearchSampler)
    assert not isinstance(make_sampler("random", 0, local_share=0.0), LocalSearchSampler)


@pytest.mark.parametrize(
    "distribution, value",
    [
        (CategoricalDistribution(["adam", "sgd", "adamw"]), "sgd"),
        (CategoricalDistribution([True, False]), True),
        (IntDistribution(8, 64, step=8), 8),
        (IntDistribution(8, 64, step=8), 64),
        (IntDistribution(16, 512, log=True), 16),
        (IntDistribution(16, 512, log=True), 100),
        (FloatDistribution(1e-4, 3e-2, log=True), 3e-2),
        (FloatDistribution(1e-4, 3e-2, log=True), 1e-3),
        (FloatDistribution(0.0, 0.5, step=0.1), 0.0),
        (FloatDistribution(0.0, 0.5), 0.5),
    ],
)
def test_perturb_moves_to_a_different_value_inside_the_range(distribution, value) -> None:
    rng = random.Random(0)
    for _ in range(20):
        new = perturb(value, distribution, rng)
        assert new != value and distribution._contains(distribution.to_internal_repr(new)), new
        if isinstance(distribution, IntDistribution):
            assert isinstance(new, int)


def test_perturb_keeps_a_value_with_nowhere_to_go() -> None:
    assert perturb("only", CategoricalDistribution(["only"]), random.Random(0)) == "only"


def test_dashboards_name_where_a_configuration_came_from() -> None:
    from optuna.trial import create_trial

    from search.schema import origin_of  # what the dashboards show as a trial's origin

    def made(attrs: dict) -> optuna.trial.FrozenTrial:
        return create_trial(value=0.5, user_attrs=attrs)

    assert origin_of(made({"point": "tutorial"}).user_attrs) == "tutorial"
    assert origin_of(made({TrialKey.NEAR: 3}).user_attrs) == "near #3"
    assert origin_of(made({}).user_attrs) is None
