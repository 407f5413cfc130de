"""Training under a clock: the time cap, a cap moved while training runs, and a schedule that anneals by it."""
from __future__ import annotations

import time
from pathlib import Path

import keras
import optuna
import pytest

import spaces
from search.config import SearchConfig
from search.data import load_dataset
from search.engine.objective import CAP_GROWTH, Objective, earned_deadline
from search.engine.trainer import EpochHook, TrainClock, cosine_horizon, train_model
from spaces.common import cosine_lr

# A small LeNet on the constant schedule, so the learning rate is what the test sets.
VALUES = {"filters_0": 4, "filters_1": 8, "units_0": 32, "units_1": 16, "augment": False, "batch_size": 128}


def test_the_horizon_shrinks_to_the_epochs_the_time_left_pays_for() -> None:
    assert cosine_horizon(10, 0, None, 5.0) == 10  # nothing measured yet
    assert cosine_horizon(10, 3, 2.0, None) == 10  # no deadline
    assert cosine_horizon(10, 3, 2.0, 100.0) == 10  # time for every epoch
    assert cosine_horizon(10, 3, 2.0, 9.0) == 7  # four more epochs fit: anneal over 3 + 4
    assert cosine_horizon(10, 3, 2.0, 1.0) == 4  # not one more epoch: this one is the last
    assert cosine_horizon(10, 3, 2.0, -5.0) == 4  # past the deadline


def test_a_trial_past_the_screen_earns_a_cap_for_its_epochs_within_limits() -> None:
    # 10 s for the first of 10 epochs: 100 s wanted, the base cap of 60 s grows to 100 s.
    assert earned_deadline(1000.0, 1010.0, 1, 10, 60.0, None) == pytest.approx(1100.0)
    # Never more than CAP_GROWTH times the base cap, never past the search's end.
    assert earned_deadline(1000.0, 1030.0, 1, 10, 60.0, None) == pytest.approx(1000.0 + CAP_GROWTH * 60.0)
    assert earned_deadline(1000.0, 1010.0, 1, 10, 60.0, 1050.0) == pytest.approx(1050.0)
    # A fast trial keeps its base cap (it will not need it).
    assert earned_deadline(1000.0, 1001.0, 1, 10, 60.0, None) == pytest.approx(1060.0)


@pytest.fixture(scope="module")
def dataset(tiny_data: Path):  # -> Dataset
    return load_dataset(tiny_data, n_classes=43)


def _model():  # -> keras.Model
    keras.utils.set_random_seed(0)
    return spaces.get_space("lenet").build(spaces.ValuesHyperParameters(dict(VALUES)), (32, 32, 3), 43)


def test_the_cap_stops_training_and_follows_a_moved_clock(dataset) -> None:  # noqa: ANN001
    capped = train_model(_model(), dataset, VALUES, epochs=5, patience=5, deadline=time.monotonic())
    assert capped.stop_reason == "time_cap" and capped.epochs_run == 1  # stopped after one batch

    clock = TrainClock(time.monotonic() + 3600.0)

    def move(epoch: int, val_accuracy: float) -> bool:  # a hook moves the deadline while training runs
        if epoch == 1:
            clock.deadline = time.monotonic()
        return False

    moved = train_model(_model(), dataset, VALUES, epochs=5, patience=5, deadline=clock, hooks=[EpochHook(move)])
    assert moved.stop_reason == "time_cap" and moved.epochs_run == 2  # the second epoch stopped at once


class _NoTimeLeft(TrainClock):
    """A clock that never stops training but tells the schedule no further epoch fits."""

    def seconds_left(self) -> float:
        return 0.0


def test_a_capped_cosine_run_anneals_by_its_deadline(dataset) -> None:  # noqa: ANN001
    values = {**VALUES, "lr_schedule": "cosine", "learning_rate": 1e-2}
    model = _model()
    seen: list[float] = []

    def record(epoch: int, val_accuracy: float) -> bool:  # the rate the epoch ran at
        seen.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
        return False

    train_model(model, dataset, values, epochs=10, patience=10, deadline=_NoTimeLeft(), hooks=[EpochHook(record)])
    assert len(seen) == 10
    assert seen[0] == pytest.approx(1e-2)  # nothing is known before the first epoch has run
    # From the second epoch on, each epoch is the schedule's last: the rate falls at once (uncapped,
    # the second of ten epochs would run at 97.6% of the base rate).
    assert seen[1] == pytest.approx(cosine_lr(1e-2, 1, 2)) and seen[2] == pytest.approx(cosine_lr(1e-2, 2, 3))


def test_sampled_trials_earn_a_longer_cap_named_points_keep_the_base_cap(dataset, tmp_path: Path) -> None:  # noqa: ANN001
    # Named points run first: their job is a good model within the first cap, so they earn no more.
    cfg = SearchConfig(data_dir=tmp_path, timeout=5.0, out=tmp_path, retrain=False, dashboard_every=0)
    assert cfg.trial_time_limit == pytest.approx(1.0)  # a fifth of --timeout
    objective = Objective(dataset, spaces.get_space("lenet"), cfg, target=10, deadline=None)
    study = optuna.create_study(direction="maximize")
    moved = {}
    for kind in ("named", "sampled"):
        trial = study.ask()
        if kind == "named":
            trial.set_user_attr("point", "tutorial")
        clock = TrainClock(time.monotonic() + cfg.trial_time_limit)
        before = clock.deadline
        hook = objective.epoch_hooks(trial, clock)[0]
        time.sleep(0.15)  # the screen's epoch: 10 epochs at this pace want 1.5 s, above the 1 s base cap
        assert hook.fn(1, 0.9) is False
        moved[kind] = clock.deadline - before
    assert moved["named"] == 0.0
    assert 0.4 < moved["sampled"] <= 1.0  # earned: about 1.5 s from its start, at most twice the base cap
