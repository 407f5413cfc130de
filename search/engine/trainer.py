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
from ..schema import StopReason
from .interrupt import StopOnRequest

EVAL_BATCH_SIZE = 1024


@dataclass
class TrainResult:
    val_curve: list[float]
    train_curve: list[float]
    best_epoch: int  # 1-based; 0 when no epoch finished
    epochs_run: int
    seconds: float
    stop_reason: StopReason
    val_loss_curve: list[float] = field(default_factory=list)
    compile_seconds: float = 0.0  # tracing + XLA compilation (compiled engine only; fit's is not measured)

    @property
    def best_val_accuracy(self) -> float:
        return max(self.val_curve) if self.val_curve else 0.0


@dataclass
class TrainClock:
    """When a training run must stop (``time.monotonic()``; None: never). The caller may move it
    while the run goes on: a search trial that passed the first screen earns a longer cap."""

    deadline: float | None = None

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


def cosine_horizon(epochs: int, epoch: int, last_epoch_seconds: float | None, seconds_left: float | None) -> int:
    """The epoch count the cosine schedule anneals over, asked at the start of (0-based) ``epoch``.

    ``epochs`` while the time left pays for them; fewer when a time cap will stop the run first,
    so a capped run still ends at a low learning rate (budget-aware schedules: Li et al., "Budgeted
    training", ICLR 2020). The pace is the last epoch's (training and validation), known from the
    second epoch on; the first epoch's own pace includes the one-off tracing.
    """
    if epoch == 0 or seconds_left is None or not last_epoch_seconds:
        return epochs
    fit = int(max(seconds_left, 0.0) // last_epoch_seconds)
    return max(epoch + 1, min(epochs, epoch + fit))


class _EpochPace(keras.callbacks.Callback):
    """Times whole epochs, so the schedule knows how many the clock still pays for; must come
    before the schedule in the callback list (its ``on_epoch_begin`` runs first)."""

    def __init__(self, epochs: int, clock: TrainClock) -> None:
        super().__init__()
        self.epochs, self.clock = epochs, clock
        self.began: float | None = None
        self.last: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        if self.began is not None:
            self.last = now - self.began
        self.began = now

    def horizon(self, epoch: int) -> int:
        return cosine_horizon(self.epochs, epoch, self.last, self.clock.seconds_left())


class _WallClockCap(keras.callbacks.Callback):
    """Stops training (mid-epoch if need be) once the clock's deadline has passed."""

    def __init__(self, clock: TrainClock) -> None:
        super().__init__()
        self.clock = clock
        self.hit = False

    def _check(self) -> None:
        if self.clock.deadline is not None and time.monotonic() >= self.clock.deadline:
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


def fit_model(
    model: keras.Model,
    dataset: Dataset,
    values: dict,
    *,
    epochs: int,
    patience: int,
    deadline: float | TrainClock | None = None,
    hooks: Sequence[keras.callbacks.Callback] = (),
    steps_per_execution: int = 1,
    verbose: int = 0,
) -> TrainResult:
    """The ``fit`` engine (``engines.py``): Keras' ``model.fit`` with the training settings found in
    ``values`` (batch size, lr schedule, class balance), watched by ``TrainingCallbacks``."""
    settings = common.training_settings(values)
    run = TrainingCallbacks.for_run(settings, epochs=epochs, patience=patience, deadline=deadline, hooks=hooks)
    model.steps_per_execution = supported_steps_per_execution(steps_per_execution)
    start = time.monotonic()
    weights = common.class_weights(dataset.train.labels, dataset.n_classes, settings.class_balance)
    history = model.fit(
        dataset.train.features,
        dataset.train.labels,
        batch_size=settings.batch_size,
        epochs=epochs,
        validation_data=(dataset.valid.features, dataset.valid.labels),
        validation_batch_size=EVAL_BATCH_SIZE,
        shuffle=True,
        callbacks=run.callbacks,
        class_weight=None if weights is None else dict(enumerate(weights.tolist())),
        verbose=verbose,
    )
    return run.result(history.history, time.monotonic() - start)


@dataclass
class TrainingCallbacks:
    """What every training run (``fit`` or the compiled engine) is watched by, in calling order, and
    how their verdicts become a ``TrainResult``: one place, so both engines stop for the same reasons."""

    callbacks: list[keras.callbacks.Callback]
    nan: _NaNGuard
    cap: _WallClockCap
    early: keras.callbacks.EarlyStopping
    hooks: Sequence[keras.callbacks.Callback]

    @classmethod
    def for_run(
        cls,
        settings: common.TrainingSettings,
        *,
        epochs: int,
        patience: int,
        deadline: float | TrainClock | None,
        hooks: Sequence[keras.callbacks.Callback],
    ) -> TrainingCallbacks:
        """Ctrl-C, the NaN guard, the time cap, early stopping on validation accuracy (best weights
        restored), the caller's hooks, then the learning-rate schedule (annealing by the deadline)."""
        clock = deadline if isinstance(deadline, TrainClock) else TrainClock(deadline)
        early = keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=patience, restore_best_weights=True
        )
        cap, nan, pace = _WallClockCap(clock), _NaNGuard(), _EpochPace(epochs, clock)
        callbacks: list[keras.callbacks.Callback] = [StopOnRequest(), nan, cap, early, *hooks, pace]
        schedule = common.lr_callback(settings, epochs, horizon=pace.horizon)
        if schedule is not None:
            callbacks.append(schedule)
        return cls(callbacks=callbacks, nan=nan, cap=cap, early=early, hooks=hooks)

    def stop_reason(self) -> StopReason:
        if self.nan.hit:
            return StopReason.NAN
        if any(getattr(h, "stopped", False) for h in self.hooks):
            return StopReason.PRUNED
        if self.cap.hit:
            return StopReason.TIME_CAP
        return StopReason.EARLY_STOP if self.early.stopped_epoch > 0 else StopReason.MAX_EPOCHS

    def result(self, history: dict[str, list], seconds: float, compile_seconds: float = 0.0) -> TrainResult:
        """The run's ``TrainResult`` from its per-epoch logs (``History.history``'s form)."""
        val = [float(v) for v in history.get("val_accuracy", [])]
        finite = [v if math.isfinite(v) else -1.0 for v in val]
        return TrainResult(
            val_curve=val,
            train_curve=[float(v) for v in history.get("accuracy", [])],
            best_epoch=int(np.argmax(finite)) + 1 if finite else 0,
            epochs_run=len(val),
            seconds=seconds,
            stop_reason=self.stop_reason(),
            val_loss_curve=[float(v) for v in history.get("val_loss", [])],
            compile_seconds=compile_seconds,
        )


def count_params(model: keras.Model) -> int:
    return int(model.count_params())
