"""Named points' share of a timed search: the cost estimate from MACs and data size, the cap, the skip."""

from __future__ import annotations

import keras
import optuna
import pytest

from search.engine.point_budget import (
    DEFAULT_FACTOR,
    MIN_POINT_EPOCHS,
    NAMED_SHARE,
    epoch_seconds,
    measured_factor,
    model_macs,
    named_point_cap,
    point_cap,
)
from search.schema import TrialKey


def test_macs_count_convolutions_over_their_output_and_dense_layers_once() -> None:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    assert model_macs(model) == 8 * 8 * (3 * 3 * 3 * 4) + 8 * 8 * 4 * 5
    nested = keras.Sequential([keras.Input((8, 8, 3)), model])
    assert model_macs(nested) == model_macs(model)


def test_the_cost_grows_with_the_data_and_the_model() -> None:
    assert epoch_seconds(56.5e6, 10_000, DEFAULT_FACTOR) == pytest.approx(27, rel=0.05)  # lean2 on the sample
    assert epoch_seconds(56.5e6, 20_000, DEFAULT_FACTOR) == pytest.approx(
        2 * epoch_seconds(56.5e6, 10_000, DEFAULT_FACTOR)
    )
    assert epoch_seconds(1.7e6, 10_000, DEFAULT_FACTOR) < epoch_seconds(15.2e6, 10_000, DEFAULT_FACTOR) / 3


def _trial(number: int, state: optuna.trial.TrialState, **attrs: object) -> optuna.trial.FrozenTrial:
    return optuna.trial.FrozenTrial(
        number=number,
        state=state,
        value=0.9 if state.name == "COMPLETE" else None,
        values=None,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=dict(attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


def test_the_factor_is_measured_from_finished_trials() -> None:
    done = _trial(0, optuna.trial.TrialState.COMPLETE, **{TrialKey.MACS: 56.5e6, TrialKey.SECONDS_PER_EPOCH: 54.0})
    assert measured_factor([], 10_000) == DEFAULT_FACTOR
    factor = measured_factor([done], 10_000)
    assert epoch_seconds(56.5e6, 10_000, factor) == pytest.approx(54.0)  # this host is twice as slow


def test_points_share_the_allowance_in_order_and_the_later_ones_are_skipped() -> None:
    # the first point always runs, with what is left after the later points' two epochs each
    assert point_cap(0.0, 630.0, 60.0, 100.0, first=True) == 530.0
    assert point_cap(0.0, 100.0, 60.0, 100.0, first=True) == 60.0  # at least its own two epochs
    assert point_cap(600.0, 630.0, 60.0, 0.0, first=True) == 60.0
    # a later one runs while its own two epochs fit, squeezing the points after it
    assert point_cap(500.0, 630.0, 60.0, 100.0, first=False) == 60.0
    assert point_cap(500.0, 630.0, 200.0, 0.0, first=False) is None


def test_a_named_point_cap_from_the_study() -> None:
    complete = optuna.trial.TrialState.COMPLETE
    lean2 = _trial(
        0,
        complete,
        **{TrialKey.POINT: "lean2", TrialKey.SECONDS: 270.0, TrialKey.MACS: 56.5e6, TrialKey.SECONDS_PER_EPOCH: 27.0},
    )
    sampled = _trial(1, complete, **{TrialKey.SECONDS: 999.0})  # not a named point: not in the share
    running = _trial(2, optuna.trial.TrialState.RUNNING, **{TrialKey.POINT: "lean"})
    later = {3: 1.7e6}
    cap = named_point_cap([lean2, sampled, running], 2, 15.2e6, 10_000, 1800.0, later)
    factor = measured_factor([lean2], 10_000)
    assert cap == pytest.approx(NAMED_SHARE * 1800 - 270 - MIN_POINT_EPOCHS * epoch_seconds(1.7e6, 10_000, factor))
    assert named_point_cap([lean2, running], 2, 15.2e6, 10_000, 600.0, later) is None  # 210 s: lean2 took them
