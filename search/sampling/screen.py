"""A cheap first screen: every configuration trains one epoch, and only the best share goes on.

On a wall-clock budget a search gets few trials, and most sampled configurations end far below the
best: on real GTSRB, 15 of the 23 pruned trials of a 60-minute search were under 0.9 validation
accuracy when Hyperband stopped them, and they cost 523 s. Hyperband splits the few trials into
brackets that each need many trials before they judge well. One shared rung judged against every
trial of the study decides at once: after its first epoch a trial goes on only if its validation
accuracy is in the top ``share`` of all first-epoch scores seen so far (the named points' and
earlier trials' included). Discarding after one epoch and training the top share in full matches
multi-fidelity methods at a fraction of their cost (Egele et al., "Is one epoch all you need for
multi-fidelity HPO?", 2023).

A trial that passed the screen is never pruned again: early stopping, the no-learning guard and
the time cap end it. Named points and re-evaluations are anchors that the objective never prunes.
"""
from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState

SCREEN_EPOCH = 1  # the rung every configuration is judged at
SCREEN_SHARE = 1 / 3  # the share of first-epoch scores that goes on
MIN_COMPARED = 3  # with fewer earlier first-epoch scores than this, every trial goes on
SEEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def promoted(value: float, others: list[float], share: float) -> bool:
    """Whether a first-epoch score ``value`` is within the top ``share`` of itself and ``others``.

    Ties count in the trial's favour: it goes on unless the scores strictly above it fill the
    top share (``ceil(share * (len(others) + 1))`` places, at least one).
    """
    if len(others) < MIN_COMPARED:
        return True
    if not math.isfinite(value):
        return False
    places = max(1, math.ceil(share * (len(others) + 1)))
    return sum(other > value for other in others) < places


class ScreenPruner(optuna.pruners.BasePruner):
    """Prunes at epoch ``SCREEN_EPOCH`` unless the trial's score is in the study's top ``share``."""

    def __init__(self, share: float = SCREEN_SHARE) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"screen share must be above 0 and at most 1, got {share}")
        self.share = share

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if trial.last_step != SCREEN_EPOCH:
            return False  # before the screen nothing is known; after it the trial has earned its run
        return not promoted(trial.intermediate_values[SCREEN_EPOCH], first_epoch_scores(study, trial), self.share)


def first_epoch_scores(study: optuna.Study, trial: FrozenTrial) -> list[float]:
    """The screen scores of every other trial of the study that reached the screen."""
    scores = []
    for other in study.get_trials(deepcopy=False, states=SEEN):
        value = other.intermediate_values.get(SCREEN_EPOCH)
        if other.number != trial.number and value is not None and math.isfinite(value):
            scores.append(float(value))
    return scores
