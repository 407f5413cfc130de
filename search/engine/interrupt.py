"""Ctrl-C during training is never lost: the first press asks for a stop at the next safe point.

Python turns SIGINT into a KeyboardInterrupt at whatever bytecode runs next. When that is a
``__del__`` method or a garbage-collector callback (TensorFlow runs many of them when a trial's
model is dropped), Python prints "Exception ignored" and drops the exception, and the search runs
on as if nothing was pressed: 5 of 20 Ctrl-Cs sent in the 2.5 s after a trial ended were lost
that way. Inside ``deferred_interrupts()`` the signal handler only records the request, and
KeyboardInterrupt is raised where it is safe and handled: at the next batch end during training
(``StopOnRequest``), between trials, or when the block ends. A second press raises at once, for
someone who will not wait for a batch.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import keras

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """How many stop signals arrived since the current ``deferred_interrupts()`` block began."""

    def __init__(self) -> None:
        self.count = 0

    @property
    def requested(self) -> bool:
        return self.count > 0

    def handle(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        # os.write, not print: the handler may run in the middle of a print to the same stream.
        os.write(
            2,
            f"\n{signal.Signals(signum).name}: stopping at the end of the current batch, or before "
            "the next trial; completed trials are kept (press Ctrl-C again to stop at once)\n".encode(),
        )

    def raise_if_requested(self) -> None:
        if self.requested:
            raise KeyboardInterrupt


STOP = StopRequest()


@contextmanager
def deferred_interrupts() -> Iterator[StopRequest]:
    """Record SIGINT/SIGTERM instead of raising; raise KeyboardInterrupt on leaving if one came.

    Nested blocks share the outer one's handler; outside the main thread (where Python allows no
    signal handlers) the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread() or _installed():
        yield STOP
        return
    previous = {sig: signal.signal(sig, STOP.handle) for sig in SIGNALS}
    STOP.count = 0
    try:
        yield STOP
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    STOP.raise_if_requested()


def _installed() -> bool:
    return signal.getsignal(signal.SIGINT) == STOP.handle


class StopOnRequest(keras.callbacks.Callback):
    """Leaves ``fit`` (or ``evaluate``, ``predict``) by KeyboardInterrupt at the first batch end
    after a stop was requested: a point where raising is safe, unlike inside a ``__del__``. The
    rest of the epoch and its validation pass are skipped; the trial is re-run anyway."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        STOP.raise_if_requested()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        STOP.raise_if_requested()

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        STOP.raise_if_requested()
