"""One budget for the whole job: what the final stage will cost, reserved before the search stops.

``--timeout`` bounds the job from start to the last file written. With the search's models kept
(``--keep-models``, the default), the final stage starts from trained models and needs no retrain:
the search leaves it ``FINAL_TRAIN_SHARE`` of the budget, which it fills with new members and further
training up to its deadline, plus its overhead after the last epoch. Without kept models (or with
``--final-data train+valid``, whose refit trains from scratch) it retrains the best distinct
configurations for up to ``final_epoch_limit`` epochs each; that cost is estimated from the seconds
per epoch the search measured for those same configurations. The single best configuration is
always paid for; further candidates (an ensemble) only while the final stage stays within
``FINAL_SHARE`` of the budget.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial

from ..config import SearchConfig
from ..schema import TrialKey, distinct_top

FINAL_SHARE = 0.5  # most of the budget the final stage may take beyond the single best's retrain
FINAL_TRAIN_SHARE = 0.2  # the final stage's training time when it starts from kept models
# After the last final epoch: choosing (TTA predictions of validation), saving, test scoring and speed,
# exports (conversion, then the whole test set in each runtime) and the dashboard: a fixed part, and per
# forward pass of the final model (members x TTA views) about 0.9 of a training epoch of the best
# model. Measured on the sample on 2026-12-07 (lean2, 30-33 s per epoch): a single model 43 s after its
# last epoch (this estimate: 50 s), a single model with TTA, 5 passes, 149 s (estimate: 155 s).
OVERHEAD_SECONDS = 20.0
OVERHEAD_EPOCHS_PER_PASS = 0.9
PLANNED_PASSES = 5  # what is reserved before the final model is known: one model with TTA
SAFETY = 1.15  # a final epoch costs a little more than a search epoch (first-epoch compile, no cap)


def seconds_per_epoch(trial: FrozenTrial) -> float:
    """Seconds one epoch of ``trial``'s configuration took in the search (0 when not recorded)."""
    return float(trial.user_attrs.get(TrialKey.SECONDS_PER_EPOCH) or 0.0)


def retrain_seconds(trial: FrozenTrial, cfg: SearchConfig) -> float:
    """Estimated seconds to retrain ``trial``'s configuration for the final stage."""
    per_epoch = seconds_per_epoch(trial)
    runs = 2 if cfg.final_data == "train+valid" else 1  # a validation run picks the epochs, then the refit
    return per_epoch * cfg.final_epoch_limit * runs * SAFETY


def member_seconds(trial: FrozenTrial) -> float:
    """Estimated seconds of a new member of ``trial``'s configuration trained as long as the trial was."""
    per_epoch = seconds_per_epoch(trial)
    epochs = int(trial.user_attrs.get(TrialKey.EPOCHS) or 0) + int(trial.user_attrs.get(TrialKey.RESUMED_EPOCHS) or 0)
    return per_epoch * max(epochs, 1) * SAFETY


def plan(trials: Sequence[FrozenTrial], cfg: SearchConfig, budget: float | None) -> list[FrozenTrial]:
    """The candidates the final stage retrains within ``budget`` seconds (None: no limit): the best
    always, then the next distinct ones while they fit."""
    ranked = distinct_top(trials, cfg.final_candidates, tie_break=cfg.tie_break)
    chosen: list[FrozenTrial] = []
    spent = 0.0
    for trial in ranked:
        cost = retrain_seconds(trial, cfg)
        if chosen and budget is not None and spent + cost > budget:
            break
        chosen.append(trial)
        spent += cost
    return chosen


def reserve_seconds(study: optuna.Study, cfg: SearchConfig) -> float:
    """Seconds the search leaves for the final stage, now (0 before any trial completed)."""
    if not cfg.retrain or cfg.timeout is None:
        return 0.0
    trials = study.get_trials(deepcopy=False)
    if cfg.keep_models > 0 and cfg.final_data == "train":
        best = distinct_top(trials, 1, tie_break=cfg.tie_break)
        return FINAL_TRAIN_SHARE * cfg.timeout + overhead_seconds(best[0]) if best else 0.0
    candidates = plan(trials, cfg, budget=FINAL_SHARE * cfg.timeout)
    if not candidates:
        return 0.0
    return sum(retrain_seconds(t, cfg) for t in candidates) + overhead_seconds(candidates[0])


def overhead_seconds(best: FrozenTrial, passes: float = PLANNED_PASSES) -> float:
    """What the final stage costs after its last epoch, for a final model of ``passes`` forward passes
    per image, each at ``best``'s speed."""
    per_epoch = seconds_per_epoch(best)
    return OVERHEAD_SECONDS + OVERHEAD_EPOCHS_PER_PASS * passes * per_epoch
