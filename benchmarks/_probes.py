"""Instruments for a real ``run_search``: per-trial records and timings, through the engine's callbacks.

The benchmarks run the search exactly as ``run_search.py search`` does: the same ``SearchEvents``
the command line builds (progress lines, dashboard refresh), with a :class:`TrialRecorder` added
after every finished trial, and optionally a first-batch timing probe inside each trial's ``fit``
(``SearchEvents.on_trial_start`` and ``trial_callbacks``). No engine class is subclassed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras

from search.config import SearchConfig
from search.engine.events import SearchEvents
from search.schema import TrialKey, best_trial, count_finished


class TrialRecorder:
    """Records every finished trial; ``on_trial(trial, record)`` is called after each."""

    def __init__(self, on_trial: Callable[[Any, dict], None] | None = None) -> None:
        self.on_trial = on_trial
        self.t0 = time.monotonic()
        self.trials: list[dict[str, Any]] = []

    def __call__(self, study: Any, trial: Any) -> None:
        ua = trial.user_attrs
        curve = [v for v in ua.get(TrialKey.VAL_CURVE, []) if v == v]
        best = best_trial(study)
        rec = {
            "number": trial.number,
            "state": trial.state.name,
            "finished": count_finished(study.get_trials(deepcopy=False)),
            "elapsed": time.monotonic() - self.t0,
            "wall": time.time(),
            "value": trial.values[0] if trial.values else None,
            "observed": max(curve) if curve else None,
            "best_complete": best.values[0] if best else None,
            "epochs": ua.get(TrialKey.EPOCHS),
            "seconds": ua.get(TrialKey.SECONDS),
            "params": ua.get(TrialKey.PARAMS),
            "stop_reason": ua.get(TrialKey.STOP_REASON),
            "point": ua.get(TrialKey.POINT),
        }
        self.trials.append(rec)
        if self.on_trial is not None:
            self.on_trial(trial, rec)


class _FirstBatchProbe(keras.callbacks.Callback):
    def __init__(self, rec: dict[str, Any]) -> None:
        super().__init__()
        self.rec = rec

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.rec.setdefault("train_begin", time.time())

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.rec.setdefault("first_batch_begin", time.time())

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.rec.setdefault("first_batch_end", time.time())


def add_timing(events: SearchEvents, records: list[dict[str, Any]]) -> None:
    """Append one timing record per trial to ``records``.

    Record keys (``time.time()`` seconds): ``enter``/``exit`` of the objective (``exit`` when the
    loop hears the trial ended), ``train_begin`` (``fit`` set up its callbacks: the model is
    sampled, built and compiled), ``first_batch_begin`` and ``first_batch_end`` (the first batch
    includes tracing and compiling the train step).
    """

    def start(trial: Any) -> None:
        records.append({"number": trial.number, "enter": time.time()})

    def callbacks(trial: Any) -> list[keras.callbacks.Callback]:
        return [_FirstBatchProbe(records[-1])]

    def end(study: Any, trial: Any) -> None:
        for rec in reversed(records):
            if rec["number"] == trial.number:
                rec.setdefault("exit", time.time())
                break

    events.on_trial_start, events.trial_callbacks = start, callbacks
    events.on_trial_end.insert(0, end)


def instrumented_events(
    cfg: SearchConfig, *, quiet: bool, recorder: TrialRecorder, timeout: float | None = None
) -> SearchEvents:
    """The command line's own callbacks (printing unless ``quiet``), then ``recorder``."""
    from cli.reporting import search_events
    from search.progress import Progress

    progress = Progress(cfg.trials, timeout=timeout)
    events = search_events(cfg, progress)
    if quiet:
        events.say = lambda text: None
        events.on_trial_end = [cb for cb in events.on_trial_end if cb != progress.trial_end]
    events.on_trial_end.append(recorder)
    return events
