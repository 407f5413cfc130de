"""Temperature scaling and calibration error, in numpy, on predicted probabilities.

A network's softmax is usually over-confident; one temperature fitted on validation data fixes
most of that without changing a single prediction (Guo et al. 2017). The tempered probabilities
here are exactly what :class:`spaces.layers.TemperatureScaling` computes inside a saved model.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from spaces.layers import TEMPERATURE_EPSILON

TEMPERATURE_BOUNDS = (0.05, 20.0)
NLL_FLOOR = 1e-12  # the clip of test_loss in report.classification_report


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log p(true class)``, probabilities floored like ``test_loss`` so one zero is finite."""
    probs, labels = _check(probs, labels)
    if not len(labels):
        return 0.0
    picked = np.clip(probs[np.arange(len(labels)), labels], NLL_FLOOR, 1.0)
    return float(-np.log(picked).mean())


def _tempered_log(log_p: np.ndarray, temperature: float) -> np.ndarray:
    return log_softmax(log_p / temperature, axis=1)


def _log(probs: np.ndarray) -> np.ndarray:
    return np.log(np.asarray(probs, dtype=np.float64) + TEMPERATURE_EPSILON)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p + eps) / T)`` row by row (float64); ``T = 1`` gives ``p`` back (to ~1e-11)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, not {temperature!r}")
    return np.exp(_tempered_log(_log(probs), float(temperature)))


def fit_temperature(probs: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The temperature in ``bounds`` that minimises the NLL of the tempered ``probs``.

    Searched on ``log T`` (the NLL is smooth and close to unimodal there); never returns a
    temperature whose NLL is worse than ``T = 1``, so a bounded search that stalls cannot hurt.
    """
    probs, labels = _check(probs, labels)
    if not len(labels):
        return 1.0
    log_p = _log(probs)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-_tempered_log(log_p, math.exp(log_t))[rows, labels].mean())

    lo, hi = (math.log(b) for b in bounds)
    result = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-5})
    if not result.success or not np.isfinite(result.fun) or result.fun > nll(0.0):
        return 1.0
    return float(math.exp(result.x))


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bins ``(b/B, (b+1)/B]``; a confidence of exactly 0 goes to the first bin."""
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict:
    """Per equal-width bin of max-probability confidence: mean confidence, accuracy and count
    (``None`` for empty bins, so the dict is plain JSON), plus the bin edges and the ECE."""
    probs, labels = _check(probs, labels)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, not {bins}")
    confidence = probs.max(axis=1) if len(labels) else np.zeros(0)
    correct = (probs.argmax(axis=1) == labels) if len(labels) else np.zeros(0, dtype=bool)
    index = _bin_index(confidence, bins)
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    hit_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    filled = count > 0
    mean_conf = np.divide(conf_sum, count, out=np.zeros(bins), where=filled)
    accuracy = np.divide(hit_sum, count, out=np.zeros(bins), where=filled)
    ece = float((count * np.abs(accuracy - mean_conf)).sum() / count.sum()) if count.sum() else 0.0
    return {
        "edges": np.linspace(0.0, 1.0, bins + 1).tolist(),
        "confidence": [float(c) if f else None for c, f in zip(mean_conf, filled)],
        "accuracy": [float(a) if f else None for a, f in zip(accuracy, filled)],
        "count": count.astype(int).tolist(),
        "ece": ece,
    }


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """``sum_b n_b/N * |accuracy_b - confidence_b|`` over equal-width confidence bins."""
    return reliability(probs, labels, bins)["ece"]


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"probs must be (n, classes) with n = {len(labels)} labels, not {probs.shape}")
    return probs, labels
