"""A cheap first look: every configuration trains on part of the data, and only the best share goes on.

On a wall-clock budget a search gets few trials, and most sampled configurations end far below the
best: on real GTSRB, 15 of the 23 pruned trials of a 60-minute search were under 0.9 validation
accuracy when Hyperband stopped them, and they cost 523 s. Hyperband splits the few trials into
brackets that each need many trials before they judge well. One shared rung judged against every
trial of the study decides at once: once a trial has trained on its first ``screen_images`` images
(its first epoch on small data, the first ``SCREEN_IMAGES`` of it on large data), it goes on only if
its validation accuracy then is in the top ``share`` of all such scores seen so far (the named points'
and earlier trials' included). Discarding after one epoch and training the top share in full matches
multi-fidelity methods at a fraction of their cost (Egele et al., "Is one epoch all you need for
multi-fidelity HPO?", 2023); on a 22k-image set a whole first epoch of a sampled configuration costs
60-80 s on two CPU cores, which is why the look stops at a fixed number of images there.
The score is reported at step ``SCREEN_STEP`` (0, before any whole epoch), so it is compared only with
scores of the same fidelity, and a trial's later epochs keep their own steps.

A trial that passed the screen is never pruned again: early stopping, the no-learning guard and
the time cap end it. Named points and re-evaluations are anchors that the objective never prunes.
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState

SCREEN_EPOCH = 1  # the epoch whose end a trial that passed the screen earns its longer cap at
SCREEN_STEP = 0  # the step the first-look score is reported at
# Images a configuration trains on before it is judged, on data with more than SCREEN_WHOLE_EPOCH times
# as many; below that the look is the whole first epoch (4,096 images is 40% of the sample's epoch).
SCREEN_IMAGES = 4096
SCREEN_WHOLE_EPOCH = 1.5
SCREEN_SHARE = 1 / 3  # the share of first-epoch scores that goes on
MIN_COMPARED = 3  # with fewer earlier first-epoch scores than this, every trial goes on
SEEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def screen_images(n_train: int) -> int | None:
    """Images a trial trains on before its first look; None: the whole first epoch."""
    return SCREEN_IMAGES if n_train > SCREEN_WHOLE_EPOCH * SCREEN_IMAGES else None


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
    """Prunes at step ``SCREEN_STEP`` (the first look) unless the trial's score is in the study's top ``share``."""

    def __init__(self, share: float = SCREEN_SHARE) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"screen share must be above 0 and at most 1, got {share}")
        self.share = share

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if trial.last_step != SCREEN_STEP:
            return False  # before the screen nothing is known; after it the trial has earned its run
        return not promoted(trial.intermediate_values[SCREEN_STEP], first_look_scores(study, trial), self.share)


def first_look_scores(study: optuna.Study, trial: FrozenTrial) -> list[float]:
    """The screen scores of every other trial of the study that reached the screen."""
    scores = []
    for other in study.get_trials(deepcopy=False, states=SEEN):
        value = other.intermediate_values.get(SCREEN_STEP)
        if other.number != trial.number and value is not None and math.isfinite(value):
            scores.append(float(value))
    return scores
