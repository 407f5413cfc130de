"""Training under a clock: the time cap, a cap moved while training runs, and a schedule that anneals by it."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest

import spaces
from search.config import SearchConfig
from search.data import load_dataset
from search.engine import objective as objective_module
from search.engine.engines import train_model
from search.engine.first_look import FirstLook
from search.engine.objective import CAP_GROWTH, Objective, earned_deadline
from search.engine.trainer import EpochHook, TrainClock, cosine_horizon
from search.sampling.screen import SCREEN_STEP, ScreenPruner
from search.schema import TrialKey
from spaces.common import class_weights, cosine_lr

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


def test_the_cap_stops_training_and_follows_a_moved_clock(dataset) -> None:
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


def test_a_capped_cosine_run_anneals_by_its_deadline(dataset) -> None:
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


def test_sampled_trials_earn_a_longer_cap_named_points_keep_the_base_cap(dataset, tmp_path: Path) -> None:
    # Named points run first: their job is a good model within the first cap, so they earn no more.
    cfg = SearchConfig(data_dir=tmp_path, timeout=5.0, out=tmp_path, retrain=False, dashboard_every=0)
    assert cfg.trial_time_limit == pytest.approx(1.0)  # a fifth of --timeout
    objective = Objective(dataset, spaces.get_space("lenet"), cfg, target=10)
    study = optuna.create_study(direction="maximize")
    moved = {}
    for kind in ("named", "sampled"):
        trial = study.ask()
        if kind == "named":
            trial.set_user_attr("point", "tutorial")
        clock = TrainClock(time.monotonic() + cfg.trial_time_limit)
        before = clock.deadline
        hook = next(h for h in objective.epoch_hooks(trial, clock) if isinstance(h, EpochHook))
        time.sleep(0.15)  # the screen's epoch: 10 epochs at this pace want 1.5 s, above the 1 s base cap
        assert hook.fn(1, 0.9) is False
        moved[kind] = clock.deadline - before
    assert moved["named"] == 0.0
    assert 0.4 < moved["sampled"] <= 1.0  # earned: about 1.5 s from its start, at most twice the base cap


class _Batches(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seen += 1


def test_the_first_look_judges_after_its_images_and_a_discarded_trial_stops_there(dataset) -> None:
    looks: list[float] = []

    def discard(val_accuracy: float) -> bool:
        looks.append(val_accuracy)
        return True

    batches = _Batches()
    look = FirstLook(discard, dataset.valid, images=256, batch_size=VALUES["batch_size"])
    result = train_model(_model(), dataset, VALUES, epochs=3, patience=3, hooks=[look, batches])
    assert len(looks) == 1 and 0.0 <= looks[0] <= 1.0  # scored on validation once, after two batches of 128
    assert batches.seen == 2 and result.stop_reason == "pruned" and result.epochs_run == 1

    kept: list[float] = []
    whole = FirstLook(lambda v: kept.append(v) or False, dataset.valid, images=None, batch_size=128)
    result = train_model(_model(), dataset, VALUES, epochs=2, patience=3, hooks=[whole])
    assert kept == [result.val_curve[0]] and result.epochs_run == 2  # small data: the first epoch's score


def test_a_search_trial_reports_its_first_look_at_step_zero(
    dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(objective_module, "screen_images", lambda n_train: 128)  # large data, as on GTSRB
    cfg = SearchConfig(data_dir=tmp_path, epochs=2, out=tmp_path, retrain=False, dashboard_every=0, keep_models=0)
    objective = Objective(dataset, spaces.get_space("lenet"), cfg, target=10)
    study = optuna.create_study(direction="maximize", pruner=ScreenPruner())
    trial = study.ask()
    value = objective(trial).value
    study.tell(trial, value)
    steps = study.trials[0].intermediate_values
    assert sorted(steps) == [SCREEN_STEP, 1, 2] and max(steps[1], steps[2]) == value
    assert len(study.trials[0].user_attrs[TrialKey.VAL_CLASS_ACCURACY]) == dataset.n_classes


def test_class_balance_weights_the_loss_by_class_counts(dataset) -> None:
    labels = np.array([0, 0, 0, 1])
    assert class_weights(labels, 3, "none") is None
    assert class_weights(labels, 3, "full") == pytest.approx([2 / 3, 2.0, 0.0])  # mean 1 over the images
    sqrt = class_weights(labels, 3, "sqrt")
    assert sqrt[labels].mean() == pytest.approx(1.0) and sqrt[1] / sqrt[0] == pytest.approx(3**0.5)
    plain = train_model(_model(), dataset, VALUES, epochs=1, patience=1)
    balanced = train_model(_model(), dataset, {**VALUES, "class_balance": "full"}, epochs=1, patience=1)
    assert plain.train_curve != balanced.train_curve  # the weights reach the loss (same seed, same data)
