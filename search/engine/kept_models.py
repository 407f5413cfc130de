"""The search's trained models, kept for the final stage instead of thrown away.

A trial that completes has trained a model; its best epoch's weights (the trainer restores them) are
often as good as anything a retrain from scratch gives, and on a short budget better. So each
completed trial's model is saved in ``runs/<study>/models/`` as ``trial-<N>.keras`` with
``trial-<N>.npz``: its validation probabilities (what ensemble selection combines,
``search/final/selection.py``) and its validation accuracy and log-loss. At most ``--keep-models``
are kept, the best by validation log-loss (accuracy is saturated on GTSRB: 1-4 images of 3,033
separate the best trials); a better one pushes the worst out. Every file is written under a temporary
name and renamed, the scores last, so a listed model is always whole. Workers on one machine share the
folder; workers on other machines keep theirs, and the final stage uses what it can reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from ..schema import RunFile, atomic_path

PROB_FLOOR = 1e-7  # one confidently wrong image must not make the log-loss infinite


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log p(true class)`` over the validation images."""
    labels = np.asarray(labels).reshape(-1)
    picked = np.clip(np.asarray(probs, dtype=np.float64)[np.arange(len(labels)), labels], PROB_FLOOR, 1.0)
    return float(-np.log(picked).mean()) if len(labels) else 0.0


@dataclass(frozen=True)
class KeptModel:
    """One kept trial model on disk, with its validation numbers."""

    trial_number: int
    val_loss: float  # log-loss of its validation probabilities (no label smoothing)
    val_accuracy: float
    folder: Path

    @property
    def model_path(self) -> Path:
        return self.folder / f"trial-{self.trial_number}.keras"

    @property
    def scores_path(self) -> Path:
        return self.folder / f"trial-{self.trial_number}.npz"

    def valid_probs(self) -> np.ndarray:
        with np.load(self.scores_path) as data:
            return np.asarray(data["valid_probs"], dtype=np.float64)

    def load(self) -> keras.Model:
        import spaces  # noqa: F401 - registers the custom layers a saved model needs

        return keras.saving.load_model(self.model_path, compile=False)


def kept_models(run_dir: Path) -> list[KeptModel]:
    """The kept models of a run folder, best (lowest validation log-loss) first."""
    folder = Path(run_dir) / RunFile.KEPT_MODELS
    found = []
    for scores in folder.glob("trial-*.npz") if folder.is_dir() else ():
        number = scores.stem.removeprefix("trial-")
        if not number.isdigit() or not (folder / f"trial-{number}.keras").is_file():
            continue
        try:
            with np.load(scores) as data:
                loss, accuracy = float(data["val_loss"]), float(data["val_accuracy"])
        except (OSError, KeyError, ValueError):
            continue  # a file another process is replacing, or not ours
        found.append(KeptModel(int(number), loss, accuracy, folder))
    return sorted(found, key=lambda k: (k.val_loss, -k.val_accuracy, k.trial_number))


def class_accuracy(probs: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float | None]:
    """Accuracy on each class's validation images (None for a class with none), to four decimals: where a
    model's errors are, which the overall accuracy of a 99.9% model hides."""
    labels = np.asarray(labels).reshape(-1)
    right = np.asarray(probs).argmax(axis=1) == labels
    counts = np.bincount(labels, minlength=n_classes)
    hits = np.bincount(labels, weights=right.astype(np.float64), minlength=n_classes)
    return [round(float(h / c), 4) if c else None for h, c in zip(hits[:n_classes], counts[:n_classes])]


def keep_model(
    run_dir: Path, trial_number: int, model: keras.Model, valid_probs: np.ndarray, valid_labels: np.ndarray, keep: int
) -> KeptModel | None:
    """Save ``model`` when it is among the ``keep`` best by validation log-loss, then drop the kept
    models beyond ``keep``; returns what was kept (None: not good enough, or ``keep`` is 0)."""
    if keep <= 0:
        return None
    probs = np.asarray(valid_probs, dtype=np.float32)
    loss = log_loss(probs, valid_labels)
    accuracy = float((probs.argmax(axis=1) == np.asarray(valid_labels)).mean())
    if not math.isfinite(loss):
        return None
    current = kept_models(run_dir)
    if len(current) >= keep and loss >= current[keep - 1].val_loss:
        return None
    kept = KeptModel(trial_number, loss, accuracy, Path(run_dir) / RunFile.KEPT_MODELS)
    kept.folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(kept.model_path) as tmp:
        model.save(tmp)
    with atomic_path(kept.scores_path) as tmp:  # last: a model is listed once its scores exist
        np.savez(tmp, valid_probs=probs, val_loss=loss, val_accuracy=accuracy)
    for worse in kept_models(run_dir)[keep:]:
        for path in (worse.scores_path, worse.model_path):
            path.unlink(missing_ok=True)
    return kept
