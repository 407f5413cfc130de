"""Ensemble selection: which trained models to average, and with what weights, chosen on validation.

Caruana et al., "Ensemble selection from libraries of models" (ICML 2004), as auto-sklearn and
AutoGluon use it: start from the best single model, then repeatedly add (with replacement) the model
whose addition lowers the validation log-loss of the running average most, and keep the best ensemble
seen. With replacement, a model chosen k times gets weight k / rounds, so a strong model can outweigh
weaker ones without a separate weight search. Log-loss rather than accuracy: on GTSRB validation
accuracy is saturated (99.9%), while the log-loss still tells a confident, right ensemble from a lucky
one. The first step is the best single model, so the result is never worse than it on this measure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .calibration import negative_log_likelihood

ROUNDS = 25  # additions tried; auto-sklearn's default ensemble_size is 50, 25 suffices for ~13 models


def select_ensemble(probs: Sequence[np.ndarray], labels: np.ndarray, rounds: int = ROUNDS) -> tuple[float, ...]:
    """Weights (summing to 1, one per model, 0 for the unused) of the greedy forward selection with
    replacement on validation log-loss; ties go to the earlier model."""
    if not probs:
        raise ValueError("ensemble selection needs at least one model")
    labels = np.asarray(labels).reshape(-1)
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    losses = [negative_log_likelihood(p, labels) for p in stack]
    counts = np.zeros(len(stack), dtype=int)
    counts[int(np.argmin(losses))] = 1
    total = stack[int(np.argmin(losses))].copy()
    best_loss, best_counts = min(losses), counts.copy()
    for size in range(2, rounds + 1):
        trial_losses = [negative_log_likelihood((total + p) / size, labels) for p in stack]
        pick = int(np.argmin(trial_losses))
        counts[pick] += 1
        total += stack[pick]
        if trial_losses[pick] < best_loss - 1e-12:
            best_loss, best_counts = trial_losses[pick], counts.copy()
    return tuple(float(c) / best_counts.sum() for c in best_counts)


def mix(probs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted average of the models' probabilities (what the assembled ensemble computes)."""
    return sum(w * np.asarray(p, dtype=np.float64) for p, w in zip(probs, weights) if w > 0)
