"""Adaptive re-evaluation: candidates within the validation set's noise are ranked by both evaluations."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from search.engine.trainer import TrainResult
from search.final.reevaluate import declare_best, standard_error, within_noise
from search.schema import TrialKey


def _candidate(
    number: int, search: float, retrain: float, *, search_loss: float = 0.1, retrain_loss: float = 0.1
) -> SimpleNamespace:
    trial = create_trial(
        value=search,
        params={"lr": 0.001 * (number + 1)},
        distributions={"lr": FloatDistribution(1e-4, 1.0)},
        user_attrs={TrialKey.VAL_LOSS_CURVE: [search_loss], TrialKey.BEST_EPOCH: 1},
    )
    trial.number = number
    result = TrainResult(
        val_curve=[retrain],
        train_curve=[retrain],
        best_epoch=1,
        epochs_run=1,
        seconds=1.0,
        stop_reason="max_epochs",
        val_loss_curve=[retrain_loss],
    )
    return SimpleNamespace(trial=trial, result=result)


def test_noise_is_the_standard_error_of_the_difference() -> None:
    assert standard_error(0.99, 0.99, 3000) == pytest.approx((2 * 0.99 * 0.01 / 3000) ** 0.5)
    assert within_noise(0.990, 0.988, 3000)  # 6 images apart: within 7.7 images of noise
    assert not within_noise(0.990, 0.980, 3000)


def test_candidates_within_noise_are_ranked_by_the_mean_of_both_evaluations() -> None:
    lucky = _candidate(4, search=0.9900, retrain=0.9850)  # the search's best, by one seed's luck
    steady = _candidate(9, search=0.9890, retrain=0.9900)
    third = _candidate(2, search=0.9600, retrain=0.9990)  # far below in the search, lucky in its retrain
    ordered, record = declare_best([lucky, steady, third], n_valid=3000)
    assert [c.trial.number for c in ordered] == [steady.trial.number, lucky.trial.number, third.trial.number]
    assert record["declared_best"] == 9 and record["search_best"] == 4
    assert record["candidates"][0] == {
        "trial_number": 9,
        "search_val_accuracy": 0.989,
        "retrain_val_accuracy": 0.99,
        "mean_val_accuracy": pytest.approx(0.9895),
        "mean_val_loss": pytest.approx(0.1),
    }


def test_equal_means_go_to_the_lower_mean_loss_then_the_search_order() -> None:
    a = _candidate(1, search=0.99, retrain=0.98, search_loss=0.2, retrain_loss=0.2)
    b = _candidate(2, search=0.98, retrain=0.99, search_loss=0.1, retrain_loss=0.1)
    assert [c.trial.number for c in declare_best([a, b], n_valid=100)[0]] == [2, 1]
    c = _candidate(3, search=0.98, retrain=0.99, search_loss=0.2, retrain_loss=0.2)
    assert [x.trial.number for x in declare_best([a, c], n_valid=100)[0]] == [1, 3]


def test_the_search_order_stands_when_the_search_told_them_apart() -> None:
    clear = _candidate(1, search=0.99, retrain=0.95)
    behind = _candidate(2, search=0.90, retrain=0.99)
    ordered, record = declare_best([clear, behind], n_valid=3000)
    assert [c.trial.number for c in ordered] == [1, 2] and record is None
    only = declare_best([clear], n_valid=3000)
    assert only == ([clear], None)
