"""Train on the best trial that the per-trial time cap cut short, from its weights, as the next trial.

A cap sized before anything is known about a configuration cuts a good one at 5-7 of its 10
epochs (the ``strong`` point at ``--timeout 600``, whose cosine anneals to the cap: a good model
early, not yet its best). Training that configuration again from scratch would pay for those
epochs twice. The continuation loads the cut model's weights, trains the epochs it had left on a
new cosine from a lower peak (a warm restart, as in SGDR), and is otherwise an ordinary trial
with the same parameters: the best-so-far, the dashboards and the final retrain need nothing new.
It runs at once, ahead of queued trials, because its job is the best model early.

The weights stay in this process's memory (``Objective.cut``), so the process that trained the
cut trial runs its continuation; one interrupted by Ctrl-C is requeued as its configuration and,
on resume, trains from scratch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from ..schema import TrialKey
from .lifecycle import TrialRun

if TYPE_CHECKING:
    from .objective import Objective

# The continuation's cosine starts at this share of the configuration's learning rate: the cut
# model already sits at a good solution, and a full-height restart would first undo part of it.
RESTART_LR_SCALE = 0.5
# A continuation starts only with time for this many of the parent's epochs before the search ends.
MIN_EPOCHS_LEFT_IN_BUDGET = 2.0
# ... and only with this many of the configuration's epochs still to train: a one-epoch continuation
# is a warm restart with no room to anneal, and it ended below its parent in all three measured
# (BENCHMARKS.md, sessions 16 and 20: 0.9565 vs 0.9723, 0.9558 vs 0.9683, 0.9921 vs 0.9987).
MIN_EPOCHS_TO_CONTINUE = 2


@dataclass
class CutTrial:
    """A trial the time cap stopped with epochs left, and what continuing it needs."""

    number: int
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    weights: list[np.ndarray]
    epochs_done: int  # epochs these weights were trained for, over the trial and its own parents
    seconds_per_epoch: float


def worth_continuing(stop_reason: str, value: float, epochs_done: int, max_epochs: int,
                     best_so_far: float | None, seconds_left: float | None, seconds_per_epoch: float) -> bool:
    """True for a trial cut by the time cap with ``MIN_EPOCHS_TO_CONTINUE`` or more epochs left
    that is the best so far (ties included), when the search still has time for a few of them."""
    if stop_reason != "time_cap" or max_epochs - epochs_done < MIN_EPOCHS_TO_CONTINUE:
        return False
    if best_so_far is not None and value < best_so_far:
        return False
    return seconds_left is None or seconds_left >= MIN_EPOCHS_LEFT_IN_BUDGET * seconds_per_epoch


def best_complete_value(study: optuna.Study) -> float | None:
    """The highest value of the study's complete trials (single objective), or None."""
    values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.value is not None]
    return max(values) if values else None


def restart_values(values: dict[str, Any]) -> dict[str, Any]:
    """The training values of a continuation: the same, with the cosine's peak lowered."""
    if "learning_rate" not in values:
        return dict(values)
    return {**values, "learning_rate": float(values["learning_rate"]) * RESTART_LR_SCALE}


def continuation_attrs(cut: CutTrial) -> dict[str, int]:
    """What a continuation records of where its weights came from."""
    return {TrialKey.CONTINUES: cut.number, TrialKey.RESUMED_EPOCHS: cut.epochs_done}


def run_continuation(study: optuna.Study, objective: Objective, errors_log: Path) -> FrozenTrial:
    """Run the continuation of ``objective.cut`` at once, ahead of queued trials (``TrialRun``: heartbeat,
    a failure stays inside the trial, Ctrl-C requeues its configuration, from scratch, and leaves)."""
    cut, objective.cut = objective.cut, None
    assert cut is not None, "run_continuation needs a cut trial"
    objective.resuming = cut
    try:
        with TrialRun(study, errors_log) as run:
            trial = run.run_now(cut.params, cut.distributions, continuation_attrs(cut))
            run.run(trial, lambda: objective(trial))
    finally:
        objective.resuming = None
    return run.done[0]
