"""What a trial is given by the loop and what it hands back: plain values, no shared state.

The loop decides when the search ends and which cut trial, if any, the next trial continues; the
trial answers with its value for Optuna and, when the time cap cut the best model so far short of
its epochs, the weights to continue from (``continuation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution


@dataclass
class CutTrial:
    """A trial the time cap stopped with epochs left, and what continuing it needs."""

    number: int
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    weights: list[np.ndarray]
    epochs_done: int  # epochs these weights were trained for, over the trial and its own parents
    seconds_per_epoch: float


@dataclass(frozen=True)
class TrialPlan:
    """What the loop gives one trial: when the search ends, and the cut trial whose weights it starts from."""

    search_end: float | None = None  # time.monotonic(); None: no budget
    resume: CutTrial | None = None


@dataclass(frozen=True)
class Scored:
    """A finished trial's value for Optuna, and the cut it leaves for the loop to continue next."""

    value: float | tuple[float, float]
    cut: CutTrial | None = None
