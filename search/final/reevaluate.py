"""Adaptive re-evaluation: which retrained candidate is declared best when the search cannot tell.

On a validation set that is 99.8% right, the best search trials are a few images apart, less than
the binomial noise of the set, so "the best trial" is partly the luck of one seed. The final stage
retrains the top candidates from scratch with other seeds anyway: each candidate then has two
evaluations. When the search's top two are within the noise, the candidates are ranked by the
mean of both evaluations (validation accuracy, ties to the lower mean validation loss) before one
is declared the single best; otherwise the search's order stands. What a retrain costs is paid
from the job's reserved budget (``budget.py``), so no extra time is spent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from optuna.trial import FrozenTrial

from ..engine.trainer import TrainResult
from ..schema import best_val_loss

NOISE_Z = 1.0  # accuracies closer than one standard error of their difference cannot be told apart


class Candidate(Protocol):
    """A retrained candidate: the search trial it came from and the retrain's result."""

    trial: FrozenTrial
    result: TrainResult


def standard_error(a: float, b: float, n: int) -> float:
    """Standard error of the difference of two accuracies, each measured on the same ``n`` images."""
    return math.sqrt(max(a * (1 - a) + b * (1 - b), 0.0) / max(n, 1))


def within_noise(a: float, b: float, n: int) -> bool:
    return abs(a - b) <= NOISE_Z * standard_error(a, b, n)


@dataclass(frozen=True)
class Evaluations:
    """A candidate's two validation scores: its search trial's and its retrain's (another seed)."""

    trial_number: int
    search_accuracy: float
    retrain_accuracy: float
    search_loss: float | None
    retrain_loss: float | None

    @property
    def mean_accuracy(self) -> float:
        return (self.search_accuracy + self.retrain_accuracy) / 2

    @property
    def mean_loss(self) -> float:
        losses = [x for x in (self.search_loss, self.retrain_loss) if x is not None and math.isfinite(x)]
        return sum(losses) / len(losses) if losses else math.inf

    def to_json(self) -> dict:
        return {
            "trial_number": self.trial_number,
            "search_val_accuracy": self.search_accuracy,
            "retrain_val_accuracy": self.retrain_accuracy,
            "mean_val_accuracy": self.mean_accuracy,
            "mean_val_loss": None if math.isinf(self.mean_loss) else self.mean_loss,
        }


def evaluations(candidate: Candidate) -> Evaluations:
    result = candidate.result
    retrain_loss = (
        result.val_loss_curve[result.best_epoch - 1] if 1 <= result.best_epoch <= len(result.val_loss_curve) else None
    )
    return Evaluations(
        trial_number=candidate.trial.number,
        search_accuracy=float(candidate.trial.values[0]),
        retrain_accuracy=float(result.best_val_accuracy),
        search_loss=best_val_loss(candidate.trial),
        retrain_loss=retrain_loss,
    )


def declare_best(candidates: Sequence[Candidate], n_valid: int) -> tuple[list, dict | None]:
    """``candidates`` (in the search's order) reordered so the first is the declared best, and a
    record of the re-evaluation (None when the search's top two were told apart, or when there is
    only one candidate)."""
    ordered = list(candidates)
    if len(ordered) < 2:
        return ordered, None
    first, second = (float(c.trial.values[0]) for c in ordered[:2])
    if not within_noise(first, second, n_valid):
        return ordered, None
    scores = {id(c): evaluations(c) for c in ordered}
    ordered.sort(key=lambda c: (-scores[id(c)].mean_accuracy, scores[id(c)].mean_loss))  # stable: search order
    record = {
        "reason": f"the search's top two ({first:.4f}, {second:.4f}) were within one standard error "
        f"({standard_error(first, second, n_valid):.4f}) on {n_valid} validation images",
        "standard_error": standard_error(first, second, n_valid),
        "candidates": [scores[id(c)].to_json() for c in ordered],
        "declared_best": ordered[0].trial.number,
        "search_best": candidates[0].trial.number,
    }
    return ordered, record
