"""One budget for the whole job: the final stage's cost is reserved from the measured seconds per epoch."""

from __future__ import annotations

import io
import time
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest

from search.config import SearchConfig
from search.engine.loop import run_search
from search.epoch_progress import EpochProgress
from search.final.budget import (
    FINAL_SHARE,
    FINAL_TRAIN_SHARE,
    OVERHEAD_EPOCHS_PER_PASS,
    OVERHEAD_SECONDS,
    PLANNED_PASSES,
    SAFETY,
    member_seconds,
    overhead_seconds,
    plan,
    reserve_seconds,
    retrain_seconds,
)
from search.final.choose import Option
from search.final.further import further_epochs
from search.final.retrain import affordable
from search.progress import Progress
from search.schema import TrialKey


def _study(per_epoch: list[float], values: list[float]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for i, (seconds, value) in enumerate(zip(per_epoch, values)):
        study.add_trial(
            optuna.trial.create_trial(
                value=value,
                params={"x": i},
                distributions={"x": optuna.distributions.IntDistribution(0, 99)},
                user_attrs={TrialKey.SECONDS_PER_EPOCH: seconds},
            )
        )
    return study


def test_the_reserve_pays_for_the_best_and_what_fits_in_the_final_share() -> None:
    # without kept models the final stage retrains from scratch
    cfg = SearchConfig(data_dir=".", timeout=1000.0, epochs=5, final_candidates=3, keep_models=0)  # 10 epochs each
    study = _study([10.0, 20.0, 30.0, 1.0], [0.9, 0.8, 0.7, 0.5])
    one = 10.0 * 10 * SAFETY
    assert retrain_seconds(study.trials[0], cfg) == pytest.approx(one)
    # best (115 s) + second (230 s) fit in 500 s; the third (345 s) would not
    chosen = plan(study.trials, cfg, budget=FINAL_SHARE * 1000)
    assert [t.number for t in chosen] == [0, 1]
    # then what comes after the last epoch: a fixed part and a few epochs' worth of the best's time
    assert reserve_seconds(study, cfg) == pytest.approx(
        one + 2 * one + OVERHEAD_SECONDS + OVERHEAD_EPOCHS_PER_PASS * PLANNED_PASSES * 10.0
    )
    # the best is paid for even when it alone exceeds the share
    assert [t.number for t in plan(study.trials, cfg, budget=1.0)] == [0]
    # nothing to reserve without a time budget, without a final stage, or before a trial completed
    assert reserve_seconds(study, SearchConfig(data_dir=".", epochs=5)) == 0.0
    assert reserve_seconds(study, SearchConfig(data_dir=".", timeout=1000.0, retrain=False)) == 0.0
    assert reserve_seconds(optuna.create_study(direction="maximize"), cfg) == 0.0
    both = SearchConfig(data_dir=".", timeout=1000.0, epochs=5, final_data="train+valid")
    assert retrain_seconds(study.trials[0], both) == pytest.approx(2 * one)  # validation run, then the refit


def test_with_kept_models_the_reserve_is_the_final_share_and_the_overhead() -> None:
    study = _study([10.0, 20.0], [0.9, 0.8])
    cfg = SearchConfig(data_dir=".", timeout=1000.0, epochs=5)  # keeps models by default: no retrain needed
    assert reserve_seconds(study, cfg) == pytest.approx(
        FINAL_TRAIN_SHARE * 1000 + OVERHEAD_SECONDS + OVERHEAD_EPOCHS_PER_PASS * PLANNED_PASSES * 10.0
    )
    assert reserve_seconds(optuna.create_study(direction="maximize"), cfg) == 0.0
    # a new member beside kept ones is priced at its trial's own length, not the full retrain
    trial = optuna.trial.create_trial(
        value=0.9,
        params={},
        distributions={},
        user_attrs={TrialKey.SECONDS_PER_EPOCH: 10.0, TrialKey.EPOCHS: 3, TrialKey.RESUMED_EPOCHS: 2},
    )
    assert member_seconds(trial) == pytest.approx(10.0 * 5 * SAFETY)


def test_further_training_takes_the_epochs_the_time_left_pays_for() -> None:
    assert further_epochs(None, 10.0, 6) == 6  # no deadline: the configured epochs
    assert further_epochs(35.0, 10.0, 6) == 3 and further_epochs(500.0, 10.0, 6) == 6
    assert further_epochs(9.0, 10.0, 6) == 0 and further_epochs(-5.0, 10.0, 6) == 0


def test_the_search_leaves_the_reserve_to_the_final_stage(tiny_data: Path, tmp_path: Path) -> None:
    cfg = SearchConfig(
        data_dir=tiny_data,
        space="lenet",
        trials=1,
        epochs=1,
        timeout=600.0,
        out=tmp_path,
        study="res",
        retrain=False,
        dashboard_every=0,
        named_points=False,
    )
    seen: list[float] = []

    def reserve(study: optuna.Study) -> float:  # the whole budget is needed by what comes after
        seen.append(time.monotonic())
        return 600.0

    outcome = run_search(cfg, started=time.monotonic(), reserve=reserve)
    assert outcome.stop_reason == "timeout" and outcome.finished == 0 and seen  # not one trial started
    cfg.study = "res2"
    assert run_search(cfg, reserve=lambda study: 0.0).finished == 1  # nothing reserved: the trial runs


def test_epoch_lines_without_a_terminal() -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    out = io.StringIO()
    x, y = np.zeros((8, 2), "float32"), np.zeros(8, "int32")
    model.fit(
        x,
        y,
        validation_data=(x, y),
        epochs=2,
        verbose=0,
        callbacks=[EpochProgress("trial 7", 2, stream=out, tty=False)],
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert lines[0].startswith("  trial 7 epoch 1/2 loss ") and "val_acc" in lines[0] and "left" in lines[0]
    assert lines[1].startswith("  trial 7 epoch 2/2") and "left" not in lines[1]


def test_the_trial_bar_counts_time_when_a_timeout_binds() -> None:
    study = _study([1.0], [0.5])
    out = io.StringIO()
    progress = Progress(1000, timeout=600.0, stream=out)
    progress.start -= 150  # a quarter of the budget gone
    progress.trial_end(study, study.trials[0])
    assert out.getvalue().startswith("[#####...............] 2m30s/10m00s 1/1000 trials trial   0")


def test_only_options_whose_exports_fit_before_the_deadline_are_offered() -> None:
    best = _study([10.0], [0.9]).trials[0]
    probs = np.full((2, 3), 1 / 3)
    single = Option(name="single", probs=probs, members=(0,))
    tta = Option(name="single + TTA", probs=probs, members=(0,), tta=True)
    ensemble = Option(name="ensemble of 2 + TTA", probs=probs, members=(0, 1), tta=True)
    options = [single, tta, ensemble]
    assert affordable(options, best, None) == options  # no budget: every option
    left = overhead_seconds(best, tta.cost()) + 5.0  # pays for 5 passes, not 10
    assert affordable(options, best, time.monotonic() + left) == [single, tta]
    assert affordable(options, best, time.monotonic() - 1.0) == [single]  # the single model always
