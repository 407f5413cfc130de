"""The screen's first look at a trial: its validation accuracy once it has trained on its first images.

On large data the look comes part-way through the first epoch (``sampling/screen.py``), so a
configuration the screen discards costs a few thousand images of training instead of a whole epoch.
The look is a Keras callback, so ``model.fit``, the compiled engine and populations all take it;
where no batch-level call comes, or the data is small, it happens at the end of the first epoch
with the epoch's own validation score.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np

from ..data import Split
from .trainer import EVAL_BATCH_SIZE


class FirstLook(keras.callbacks.Callback):
    """Calls ``judge(val_accuracy)`` once, after ``images`` training images of the first epoch (None: at
    the end of the first epoch); ``judge`` returns True to stop the run, which then counts as pruned."""

    def __init__(self, judge: Callable[[float], bool], valid: Split, *, images: int | None, batch_size: int) -> None:
        super().__init__()
        self.judge, self.valid, self.images, self.batch_size = judge, valid, images, max(int(batch_size), 1)
        self.epoch = 0
        self.done = False
        self.stopped = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.done or self.images is None or self.epoch > 0 or (batch + 1) * self.batch_size < self.images:
            return
        probs = self.model.predict(self.valid.features, batch_size=EVAL_BATCH_SIZE, verbose=0)
        self._look(float(np.mean(np.argmax(np.asarray(probs), axis=1) == self.valid.labels)))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.done:
            self._look(float((logs or {}).get("val_accuracy", math.nan)))

    def _look(self, val_accuracy: float) -> None:
        self.done = True
        if self.judge(val_accuracy):
            self.stopped = True
            self.model.stop_training = True
