"""Scoring a final model once on ``test.p``: the numbers of ``test_report.json`` and a few wrong images."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from ..data import Dataset, Split
from ..data.sanity import count_shared_images
from ..schema import RunFile, atomic_path, write_json
from .calibration import reliability
from .metrics import model_speed, size_on_disk, test_metrics

MAX_MISCLASSIFIED = 64


def evaluate_on_test(
    model: keras.Model, test: Split, dataset: Dataset, folder: Path, extra: dict | None = None
) -> dict:
    """Accuracy with its 95% interval, loss, ECE, per-class metrics, the confusion matrix and the
    reliability diagram's bins; the model's size and CPU speed; a few misclassified images.
    ``extra`` (what the final model is, its validation numbers) is stored with them. ``folder`` holds
    the model's ``best_model.keras`` and gets the report files (a final stage's new set)."""
    start = time.monotonic()
    probs = np.asarray(model.predict(test.features, batch_size=1024, verbose=0), dtype=np.float64)
    report = test_metrics(test.labels, probs, dataset.class_names)
    report["reliability"] = reliability(probs, test.labels)
    report["duplicates_with_train"] = count_shared_images(dataset.train.features, test.features)
    report["seconds"] = round(time.monotonic() - start, 3)
    report["params"] = int(model.count_params())
    model_file = folder / RunFile.BEST_MODEL
    report["size_bytes"] = size_on_disk(model_file) if model_file.exists() else None
    report["speed"] = model_speed(model, test.features)
    report.update(extra or {})
    write_json(folder / RunFile.TEST_REPORT, report)
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != test.labels)
    pick = np.sort(np.random.default_rng(0).permutation(wrong)[:MAX_MISCLASSIFIED])
    with atomic_path(folder / RunFile.MISCLASSIFIED) as tmp:
        np.savez_compressed(
            tmp, images=test.features[pick], true=test.labels[pick].astype(np.int32), pred=pred[pick].astype(np.int32)
        )
    return report
