"""Instruments for a real ``run_search``: per-trial timestamps and a hook after every finished trial.

``run_search`` accepts a ``progress`` object, and calls ``progress.trial_line`` after every trial it
counts; :class:`RecordingProgress` uses that to time trials and sample memory. The time to the first
training batch needs a callback inside the trial's ``fit``: :func:`timed_objective` makes an
``Objective`` subclass that adds one through ``Objective.epoch_hooks`` and times ``__call__``;
``run_search(objective_type=...)`` takes it. Everything else about the search is the tool's own
code path.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from search.progress import Progress


class RecordingProgress(Progress):
    """A ``Progress`` that records every finished trial (and optionally prints as usual)."""

    def __init__(self, target: int, *, timeout: float | None = None, quiet: bool = False,
                 on_trial: Callable[[Any, dict], None] | None = None) -> None:
        super().__init__(target, timeout=timeout)
        self.quiet, self.on_trial = quiet, on_trial
        self.t0 = time.monotonic()
        self.trials: list[dict[str, Any]] = []

    def say(self, text: str) -> None:
        if not self.quiet:
            super().say(text)

    def trial_line(self, trial: Any, finished: int, best: float | None) -> None:
        ua = trial.user_attrs
        curve = [v for v in ua.get("val_curve", []) if v == v]
        rec = {
            "number": trial.number, "state": trial.state.name, "finished": finished,
            "elapsed": time.monotonic() - self.t0, "wall": time.time(),
            "value": trial.values[0] if trial.values else None,
            "observed": max(curve) if curve else None, "best_complete": best,
            "epochs": ua.get("epochs"), "seconds": ua.get("seconds"), "params": ua.get("params"),
            "stop_reason": ua.get("stop_reason"), "point": ua.get("point"), "near": ua.get("near"),
        }
        self.trials.append(rec)
        if self.on_trial is not None:
            self.on_trial(trial, rec)
        if not self.quiet:
            super().trial_line(trial, finished, best)


def timed_objective(records: list[dict[str, Any]]) -> type:
    """An ``Objective`` subclass for ``run_search(objective_type=...)`` that appends one timing
    record per trial to ``records``.

    Record keys (``time.time()`` seconds): ``enter``/``exit`` of the objective, ``train_begin``
    (``fit`` set up its callbacks: the model is sampled, built and compiled), ``first_batch_begin``
    and ``first_batch_end`` (the first batch includes tracing and compiling the train step).
    """
    from search.objective import Objective
    from search.trainer import EpochHook

    class FirstBatchProbe(EpochHook):
        def __init__(self, rec: dict[str, Any]) -> None:
            super().__init__(lambda epoch, val: False)
            self.rec = rec

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.rec.setdefault("train_begin", time.time())

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            self.rec.setdefault("first_batch_begin", time.time())

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.rec.setdefault("first_batch_end", time.time())

    class TimedObjective(Objective):
        def __call__(self, trial: Any) -> Any:
            rec: dict[str, Any] = {"number": trial.number, "enter": time.time()}
            records.append(rec)
            try:
                return super().__call__(trial)
            finally:
                rec["exit"] = time.time()

        def epoch_hooks(self, trial: Any) -> list:
            return [*super().epoch_hooks(trial), FirstBatchProbe(records[-1])]

    return TimedObjective
