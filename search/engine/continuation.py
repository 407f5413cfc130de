"""Train on the best trial that the per-trial time cap cut short, from its weights, as the next trial.

A cap sized before anything is known about a configuration cuts a good one at 5-7 of its 10
epochs (the ``strong`` point at ``--timeout 600``, whose cosine anneals to the cap: a good model
early, not yet its best). Training that configuration again from scratch would pay for those
epochs twice. The continuation loads the cut model's weights, trains the epochs it had left on a
new cosine from a lower peak (a warm restart, as in SGDR), and is otherwise an ordinary trial
with the same parameters: the best-so-far, the dashboards and the final retrain need nothing new.
It runs at once, ahead of queued trials, because its job is the best model early.

The weights stay in this process's memory (the ``Scored.cut`` the trial hands back to the loop), so
the process that trained the cut trial runs its continuation; one interrupted by Ctrl-C is requeued
as its configuration and, on resume, trains from scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..schema import StopReason, TrialKey
from .lifecycle import TrialRun
from .outcome import CutTrial, Scored, TrialPlan

# The continuation's cosine starts at this share of the configuration's learning rate: the cut
# model already sits at a good solution, and a full-height restart would first undo part of it.
RESTART_LR_SCALE = 0.5
# A continuation starts only with time for this many of the parent's epochs before the search ends.
MIN_EPOCHS_LEFT_IN_BUDGET = 2.0
# ... and only with this many of the configuration's epochs still to train: a one-epoch continuation
# is a warm restart with no room to anneal, and it ended below its parent in all three measured
# (BENCHMARKS.md, the 600 s runs of 2026-12-06 22:15 and 2026-12-07 12:00: 0.9565 vs 0.9723,
# 0.9558 vs 0.9683, 0.9921 vs 0.9987).
MIN_EPOCHS_TO_CONTINUE = 2


def worth_continuing(
    stop_reason: str,
    value: float,
    epochs_done: int,
    max_epochs: int,
    best_so_far: float | None,
    seconds_left: float | None,
    seconds_per_epoch: float,
) -> bool:
    """True for a trial cut by the time cap with ``MIN_EPOCHS_TO_CONTINUE`` or more epochs left
    that is the best so far (ties included), when the search still has time for a few of them."""
    if stop_reason != StopReason.TIME_CAP or max_epochs - epochs_done < MIN_EPOCHS_TO_CONTINUE:
        return False
    if best_so_far is not None and value < best_so_far:
        return False
    return seconds_left is None or seconds_left >= MIN_EPOCHS_LEFT_IN_BUDGET * seconds_per_epoch


def best_complete_value(study: optuna.Study) -> float | None:
    """The highest value of the study's complete trials (single objective), or None."""
    values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return max(values) if values else None


def restart_values(values: dict[str, Any]) -> dict[str, Any]:
    """The training values of a continuation: the same, with the cosine's peak lowered."""
    if "learning_rate" not in values:
        return dict(values)
    return {**values, "learning_rate": float(values["learning_rate"]) * RESTART_LR_SCALE}


def continuation_attrs(cut: CutTrial) -> dict[str, int]:
    """What a continuation records of where its weights came from."""
    return {TrialKey.CONTINUES: cut.number, TrialKey.RESUMED_EPOCHS: cut.epochs_done}


def run_continuation(
    study: optuna.Study, objective: Callable[[optuna.Trial, TrialPlan], Scored], errors_log: Path, plan: TrialPlan
) -> tuple[FrozenTrial, CutTrial | None]:
    """Run the continuation of ``plan.resume`` at once, ahead of queued trials (``TrialRun``: heartbeat,
    a failure stays inside the trial, Ctrl-C requeues its configuration, from scratch, and leaves).
    Returns the trial and the cut it left (a continuation can itself be cut again)."""
    cut = plan.resume
    assert cut is not None, "run_continuation needs a cut trial"
    with TrialRun(study, errors_log) as run:
        trial = run.run_now(cut.params, cut.distributions, continuation_attrs(cut))
        scored = run.run(trial, lambda: objective(trial, plan))
    return run.done[0], scored.cut if scored is not None else None
