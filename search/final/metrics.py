"""What the final report says about a model besides accuracy: uncertainty, calibration, speed, size.

A test accuracy of 0.987 on 12,630 images means little without its interval, a deployable model
also needs calibrated confidences, and an ensemble with TTA is worth its cost only if its latency
and size are known.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

import keras
import numpy as np

from .calibration import expected_calibration_error, negative_log_likelihood


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion: unlike ``p +- z*se`` it stays inside [0, 1] and
    is honest near 100 % accuracy, where the final models live. ``n = 0`` gives (0, 1)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be in 0..{n}, not {correct}")
    p = correct / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo = 0.0 if correct == 0 else max(0.0, centre - half)
    hi = 1.0 if correct == n else min(1.0, centre + half)
    return lo, hi


def test_metrics(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """``classification_report`` plus the 95 % Wilson interval of the accuracy, ECE and NLL."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    report = classification_report(labels, probs, class_names)
    correct = int((probs.argmax(axis=1) == labels).sum())
    report["accuracy_ci95"] = list(wilson_interval(correct, len(labels)))
    report["ece"] = expected_calibration_error(probs, labels)
    report["nll"] = negative_log_likelihood(probs, labels)
    return report


test_metrics.__test__ = False  # type: ignore[attr-defined]  # pytest: a function, not a test, where imported


def _batch(images: np.ndarray, size: int, dtype: str) -> np.ndarray:
    """``size`` images taken from ``images``, repeated when there are fewer."""
    images = np.asarray(images)
    if not len(images):
        raise ValueError("model_speed needs at least one image")
    index = np.arange(size) % len(images)
    return images[index].astype(dtype, copy=False)


def _median_seconds(model: keras.Model, x: np.ndarray, repeats: int, warmup: int) -> float:
    for _ in range(warmup):  # the first calls trace / compile the predict function
        model.predict_on_batch(x)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        model.predict_on_batch(x)  # returns numpy, so the device has finished
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_speed(
    model: keras.Model,
    images: np.ndarray,
    *,
    repeats: int = 20,
    batch_repeats: int = 5,
    warmup: int = 3,
    batch_size: int = 256,
) -> dict:
    """Median latency of one image and throughput at batch 256, through ``predict_on_batch``
    (the compiled predict function, as serving would run it, not eager op-by-op calls)."""
    dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    one = _batch(images, 1, dtype)
    many = _batch(images, batch_size, dtype)
    latency = _median_seconds(model, one, repeats, warmup)
    batch_seconds = _median_seconds(model, many, batch_repeats, max(1, warmup // 2))
    return {
        "latency_ms_batch1": latency * 1000.0,
        f"images_per_s_batch{batch_size}": batch_size / batch_seconds if batch_seconds > 0 else math.inf,
        "repeats": int(repeats),
        "backend": keras.backend.backend(),
    }


def size_on_disk(path: Path | str) -> int:
    """Bytes of a file, or of every file under a folder (a SavedModel or TF.js export)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        raise FileNotFoundError(f"no file or folder at {path}")
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            full = Path(root) / name
            if not full.is_symlink():
                total += full.stat().st_size
    return total


def classification_report(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """The numbers of ``test_report.json`` from true labels and predicted probabilities."""
    n = len(class_names)
    pred = probs.argmax(axis=1)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    hits = np.diag(confusion)
    recall = np.divide(hits, support, out=np.zeros(n), where=support > 0)
    precision = np.divide(hits, predicted, out=np.zeros(n), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=precision + recall > 0)
    present = support > 0
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    per_class = [
        {
            "class_id": i,
            "name": class_names[i],
            "support": int(support[i]),
            "accuracy": float(recall[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
        }
        for i in range(n)
    ]
    return {
        "test_accuracy": float((pred == labels).mean()),
        "test_loss": float(-np.log(picked).mean()),
        "n_test": int(len(labels)),
        "class_names": list(class_names),
        "per_class": per_class,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "confusion_matrix": confusion.tolist(),
    }
