"""Live progress inside one training run: the only part of the terminal output that needs Keras.

Kept apart from ``progress.py`` so that commands which only read a study (``export``, ``studies``,
``dashboard``) start without importing Keras and its backend.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import keras
from tqdm import tqdm

from .formatting import format_duration


class EpochProgress(keras.callbacks.Callback):
    """Live progress inside one training run (a trial, a final model): on a terminal a tqdm bar
    over the epoch's batches, and everywhere one plain line per finished epoch, so a log file or
    CI output shows the same progress without carriage returns."""

    def __init__(self, label: str, epochs: int, *, stream: TextIO | None = None, tty: bool | None = None) -> None:
        super().__init__()
        self.label, self.epochs = label, epochs
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.bar: tqdm | None = None
        self.start = time.monotonic()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.tty:
            self.bar = tqdm(
                total=self.params.get("steps"),
                desc=f"  {self.label} epoch {epoch + 1}/{self.epochs}",
                unit="batch",
                leave=False,
                file=self.stream,
                dynamic_ncols=True,
            )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.update(batch + 1 - self.bar.n)  # batch ends arrive every steps_per_execution steps
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        logs = logs or {}
        done = epoch + 1
        elapsed = time.monotonic() - self.start
        left = elapsed / done * (self.epochs - done)
        metrics = " ".join(
            f"{name} {float(logs[key]):.4f}"
            for key, name in (
                ("loss", "loss"),
                ("accuracy", "acc"),
                ("val_accuracy", "val_acc"),
                ("val_loss", "val_loss"),
            )
            if key in logs
        )
        eta = f", at most {format_duration(left)} left" if done < self.epochs else ""
        print(
            f"  {self.label} epoch {done}/{self.epochs} {metrics} | {format_duration(elapsed)}{eta}",
            file=self.stream,
            flush=True,
        )

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
