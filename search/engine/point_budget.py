"""The named points' share of a timed search, and each point's cost estimated from the data size before it runs.

Named points (the tutorial's models, the known good CNNs, warm starts) run first and are never pruned,
so on large data they could take the whole search: on 22k real GTSRB images at ``--timeout 3600`` the
five of them ran 24 minutes and no sampled configuration was ever tried. Together they may take
``NAMED_SHARE`` of the budget. Before a point runs, the seconds per epoch of it and of every point still
queued are estimated from their multiply-accumulates per image and the training-set size; the point
may then use what the share has left after two epochs of each later point, and a later point that
cannot get its two epochs is skipped (recorded as pruned, ``over_budget``), never the first one.

Seconds per epoch grow with ``n_train * MMAC ** MAC_EXPONENT``: small models pay more per
multiply-accumulate (batch normalisation, the input pipeline). The factor is measured from this
study's finished trials; before any, ``DEFAULT_FACTOR`` (the five named points on the sample, two
CPU cores, mixed_bfloat16: BENCHMARKS.md, "Named points' cost", 2026-12-07) stands in.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from spaces.hp import ValuesHyperParameters

from ..data import Dataset
from ..optuna_adapter import fixed_params
from ..schema import FINISHED, TrialKey

if TYPE_CHECKING:
    from spaces.space import Space

NAMED_SHARE = 0.35  # most of a --timeout budget the named points take together
MIN_POINT_EPOCHS = 2  # a point that cannot get this many epochs is skipped
MAC_EXPONENT = 0.7
DEFAULT_FACTOR = 160e-6  # seconds per training image per MMAC ** MAC_EXPONENT, with validation


def model_macs(model: keras.Model) -> float:
    """Multiply-accumulates of one image through ``model``'s layers with a kernel (convolutions, dense):
    the kernel's size, times the output's height x width for a convolution."""
    total = 0.0
    for layer in _layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):  # a layer never called symbolically: count it as dense
            shape = ()
        spatial = int(shape[1]) * int(shape[2]) if len(shape) == 4 and None not in shape[1:3] else 1
        total += float(np.prod(kernel.shape)) * spatial
    return total


def _layers(model: keras.layers.Layer) -> Iterable[keras.layers.Layer]:
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _layers(layer)


def epoch_seconds(macs: float, n_train: int, factor: float) -> float:
    """Estimated seconds of one training epoch (and its validation) of a model of ``macs``."""
    return n_train * factor * max(macs / 1e6, 1e-3) ** MAC_EXPONENT


def measured_factor(trials: Sequence[FrozenTrial], n_train: int) -> float:
    """This host's factor, from the study's trials that recorded their MACs and pace (median), else the default."""
    factors = [
        float(t.user_attrs[TrialKey.SECONDS_PER_EPOCH])
        / epoch_seconds(float(t.user_attrs[TrialKey.MACS]), n_train, 1.0)
        for t in trials
        if t.user_attrs.get(TrialKey.MACS) and t.user_attrs.get(TrialKey.SECONDS_PER_EPOCH)
    ]
    return statistics.median(factors) if factors else DEFAULT_FACTOR


def point_cap(spent: float, allowance: float, own_minimum: float, later_minimum: float, *, first: bool) -> float | None:
    """Seconds a named point may train: the allowance left after what earlier points spent, less the two
    epochs each later point needs, but at least its own two epochs; None (skip it) when what is left does not
    pay its own two epochs, unless it is the first. Points run in their order, so when the share runs out,
    the later (costlier, in the built-in spaces) points are the ones skipped."""
    left = allowance - spent
    if left < own_minimum and not first:
        return None
    return max(own_minimum, left - later_minimum)


def named_point_cap(
    trials: Sequence[FrozenTrial],
    number: int,
    macs: float,
    n_train: int,
    timeout: float,
    waiting_macs: Mapping[int, float],
) -> float | None:
    """``point_cap`` for named point ``number`` (``macs`` per image) in a study whose trials are ``trials``;
    ``waiting_macs`` holds the MACs of the named points still queued, by trial number."""
    factor = measured_factor(trials, n_train)
    points = [t for t in trials if TrialKey.POINT in t.user_attrs and t.number != number]
    finished = [t for t in points if t.state in FINISHED or t.user_attrs.get(TrialKey.SECONDS)]
    spent = sum(float(t.user_attrs.get(TrialKey.SECONDS) or 0.0) for t in finished)
    later_minimum = sum(MIN_POINT_EPOCHS * epoch_seconds(m, n_train, factor) for m in waiting_macs.values())
    own = MIN_POINT_EPOCHS * epoch_seconds(macs, n_train, factor)
    return point_cap(spent, NAMED_SHARE * timeout, own, later_minimum, first=not finished)


class PointBudget:
    """The named points' share of one process's timed search: what a named point about to run may train."""

    def __init__(self, space: Space, dataset: Dataset, timeout: float) -> None:
        self.space, self.dataset, self.timeout = space, dataset, timeout
        self._macs: dict[int, float] = {}  # queued named points' MACs per image, by trial number

    def queued(self, study: optuna.Study) -> dict[int, float]:
        """MACs of the named points still queued; each model is built once per process. Call it before
        the running trial's seed is set, so that the estimate leaves that trial's training as it was."""
        queued = {}
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            given = fixed_params(t)
            if TrialKey.POINT not in t.user_attrs or not given:
                continue
            if t.number not in self._macs:
                try:
                    model = self.space.build(
                        ValuesHyperParameters(dict(given)), self.dataset.input_shape, self.dataset.n_classes
                    )
                    self._macs[t.number] = model_macs(model)
                except (ValueError, TypeError):  # cannot be built: it will fail as a trial, at no cost
                    self._macs[t.number] = 0.0
            queued[t.number] = self._macs[t.number]
        return queued

    def cap(self, trial: optuna.Trial, macs: float, queued: Mapping[int, float]) -> float | None:
        """Seconds named point ``trial`` (``macs`` per image) may train, or None to skip it."""
        return named_point_cap(
            trial.study.get_trials(deepcopy=False), trial.number, macs, len(self.dataset.train), self.timeout, queued
        )
