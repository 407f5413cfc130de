"""Train one built model on the loaded data: the same code for search trials and the final retrain.

Early stopping on validation accuracy (best weights restored), NaN detection, a wall-clock cap
checked after every few batches, and optional per-epoch hooks (the pruning callback) are all
Keras callbacks, so training runs through a plain ``model.fit`` and costs what ``model.fit`` costs.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np

from spaces import common

from ..data import Dataset
from .interrupt import StopOnRequest

EVAL_BATCH_SIZE = 1024


@dataclass
class TrainResult:
    val_curve: list[float]
    train_curve: list[float]
    best_epoch: int  # 1-based; 0 when no epoch finished
    epochs_run: int
    seconds: float
    stop_reason: str  # early_stop | pruned | time_cap | max_epochs | nan
    val_loss_curve: list[float] = field(default_factory=list)

    @property
    def best_val_accuracy(self) -> float:
        return max(self.val_curve) if self.val_curve else 0.0


class _WallClockCap(keras.callbacks.Callback):
    """Stops training (mid-epoch if need be) once ``deadline`` (time.monotonic) has passed."""

    def __init__(self, deadline: float | None) -> None:
        super().__init__()
        self.deadline = deadline
        self.hit = False

    def _check(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.hit = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._check()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check()


class _NaNGuard(keras.callbacks.Callback):
    """Stops at the first non-finite loss; unlike TerminateOnNaN it remembers that it did."""

    def __init__(self) -> None:
        super().__init__()
        self.hit = False

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.hit = True
            self.model.stop_training = True


class EpochHook(keras.callbacks.Callback):
    """Calls ``fn(epoch_1based, val_accuracy)`` after each epoch; ``fn`` returns True to stop."""

    def __init__(self, fn: Callable[[int, float], bool]) -> None:
        super().__init__()
        self.fn = fn
        self.stopped = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        val = float((logs or {}).get("val_accuracy", float("nan")))
        if self.fn(epoch + 1, val):
            self.stopped = True
            self.model.stop_training = True


def supported_steps_per_execution(requested: int) -> int:
    """Keras' PyTorch trainer runs one step per call and refuses more; the others take ``requested``."""
    return 1 if keras.backend.backend() == "torch" else max(1, int(requested))


def train_model(model: keras.Model, dataset: Dataset, values: dict, *, epochs: int, patience: int,
                deadline: float | None = None, hooks: Sequence[keras.callbacks.Callback] = (),
                steps_per_execution: int = 1, verbose: int = 0) -> TrainResult:
    """Fit ``model`` with the training settings found in ``values`` (batch size, lr schedule)."""
    settings = common.training_settings(values)
    early = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=patience,
                                          restore_best_weights=True)
    cap, nan = _WallClockCap(deadline), _NaNGuard()
    callbacks: list[keras.callbacks.Callback] = [StopOnRequest(), nan, cap, early, *hooks]
    schedule = common.lr_callback(settings, epochs)
    if schedule is not None:
        callbacks.append(schedule)
    model.steps_per_execution = supported_steps_per_execution(steps_per_execution)
    start = time.monotonic()
    history = model.fit(dataset.train.features, dataset.train.labels, batch_size=settings.batch_size,
                        epochs=epochs, validation_data=(dataset.valid.features, dataset.valid.labels),
                        validation_batch_size=EVAL_BATCH_SIZE, shuffle=True, callbacks=callbacks,
                        verbose=verbose)
    seconds = time.monotonic() - start
    val = [float(v) for v in history.history.get("val_accuracy", [])]
    train = [float(v) for v in history.history.get("accuracy", [])]
    val_loss = [float(v) for v in history.history.get("val_loss", [])]
    finite = [v if math.isfinite(v) else -1.0 for v in val]
    best_epoch = int(np.argmax(finite)) + 1 if finite else 0
    if nan.hit:
        reason = "nan"
    elif any(getattr(h, "stopped", False) for h in hooks):
        reason = "pruned"
    elif cap.hit:
        reason = "time_cap"
    elif early.stopped_epoch > 0:
        reason = "early_stop"
    else:
        reason = "max_epochs"
    return TrainResult(val_curve=val, train_curve=train, best_epoch=best_epoch, epochs_run=len(val),
                       seconds=seconds, stop_reason=reason, val_loss_curve=val_loss)


def count_params(model: keras.Model) -> int:
    return int(model.count_params())
