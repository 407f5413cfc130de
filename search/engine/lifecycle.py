"""A trial's life, written once: asked (or created to run now), kept alive by a heartbeat, settled, told.

Solo trials, continuations and a population's members all run through ``TrialRun``, with the same
rules: a failure stays inside its trial (noted in the run's error log), a pruned trial is told as
pruned, Ctrl-C fails every open trial and requeues its configuration (run again first on resume),
and every result is told the moment it exists, so a crash or a kill loses at most the trials still
training. What a trial produces (its attributes, its kept model) is recorded by
``Objective.finish``, the one place every kind of trial ends in.
"""

from __future__ import annotations

import contextlib
import os
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from ..optuna_adapter import create_running_trial, heartbeat
from ..redaction import redact
from ..schema import StopReason, TrialKey
from .outcome import Scored

T = TypeVar("T")


class TrialFailed(Exception):
    """A trial that cannot produce a score (NaN loss, build error); the search goes on."""


def note_crash(trial: optuna.Trial, exc: BaseException, errors_log: Path) -> None:
    """Record an unexpected error on the trial and its traceback in the run's error log."""
    trial.set_user_attr(TrialKey.FAIL_REASON, redact(f"{type(exc).__name__}: {str(exc).strip()[:300]}"))
    trial.set_user_attr(TrialKey.STOP_REASON, StopReason.ERROR)
    # O_NOFOLLOW: a symlink planted under the log's name in a shared run folder is refused, not written through
    fd = os.open(errors_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    with os.fdopen(fd, "a") as fh:
        fh.write(redact(f"--- trial {trial.number} {trial.params}\n{traceback.format_exc()}\n"))


def requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """An interrupted configuration is run again first when the study resumes."""
    attrs = {TrialKey.REQUEUED_FROM: trial.number}
    for key in (TrialKey.POINT, TrialKey.NEAR):  # where the configuration came from
        if key in trial.user_attrs:
            attrs[key] = trial.user_attrs[key]
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)


class TrialRun:
    """The trials this block runs, and which of them the study has been told about.

    Used as ``with TrialRun(study, errors_log) as run:``. Leaving the block by Ctrl-C fails every
    open trial, requeues its configuration and lets the interrupt go on; leaving it by any other
    error (a population's shared program failing, say) fails every open trial with the error noted
    and ends the block normally, because one program's crash must not end the search; an error while
    no trial is open (asking the storage for one, say) goes on to the caller."""

    def __init__(self, study: optuna.Study, errors_log: Path) -> None:
        self.study, self.errors_log = study, errors_log
        self.open: list[optuna.Trial] = []
        self.done: list[FrozenTrial] = []
        self._heartbeats = contextlib.ExitStack()

    def __enter__(self) -> TrialRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        with self._heartbeats:
            if exc is None:
                return False
            if isinstance(exc, KeyboardInterrupt):
                for trial in list(self.open):
                    trial.set_user_attr(TrialKey.FAIL_REASON, "interrupted (Ctrl-C)")
                    trial.set_user_attr(TrialKey.STOP_REASON, StopReason.INTERRUPTED)
                    requeue(self.study, trial)
                    self.tell(trial, state=TrialState.FAIL)
                return False
            if not isinstance(exc, Exception) or not self.open:
                return False  # an error outside any trial (the storage's, say) is the caller's
            for trial in list(self.open):
                note_crash(trial, exc, self.errors_log)
                self.tell(trial, state=TrialState.FAIL)
            return True

    def ask(self) -> optuna.Trial:
        """The study's next trial (an enqueued configuration first, else the sampler's), running."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)  # as study.optimize does first (a no-op without heartbeats)
            # Optuna warns that heartbeats are meant for study.optimize: this class gives them as it does
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used", UserWarning)
            return self._started(self.study.ask())

    def run_now(
        self, params: dict[str, Any], distributions: dict[str, BaseDistribution], user_attrs: dict[str, Any]
    ) -> optuna.Trial:
        """A trial with ``params`` that runs now, ahead of the queue (a continuation)."""
        return self._started(create_running_trial(self.study, params, distributions, user_attrs))

    def _started(self, trial: optuna.Trial) -> optuna.Trial:
        self.open.append(trial)
        self._heartbeats.enter_context(heartbeat(self.study, trial))
        return trial

    def settle(self, trial: optuna.Trial, work: Callable[[], T]) -> T | None:
        """Run ``work`` for ``trial``; a failure or pruning is told at once (``None`` returned)."""
        try:
            return work()
        except optuna.TrialPruned:
            self.tell(trial, state=TrialState.PRUNED)
        except TrialFailed:
            self.tell(trial, state=TrialState.FAIL)
        except Exception as exc:  # one trial's crash must not end the search
            note_crash(trial, exc, self.errors_log)
            self.tell(trial, state=TrialState.FAIL)
        return None

    def run(self, trial: optuna.Trial, work: Callable[[], Scored]) -> Scored | None:
        """``settle`` and, when ``work`` returned a score, tell its value; returns the score."""
        scored = self.settle(trial, work)
        if scored is not None:
            self.tell(trial, scored.value)
        return scored

    def tell(self, trial: optuna.Trial, value: object = None, state: TrialState | None = None) -> None:
        self.open.remove(trial)
        self.done.append(self.study.tell(trial, value, state=state))  # type: ignore[arg-type]
