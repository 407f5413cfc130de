"""Running a trial outside ``study.optimize``: what happens to it on a crash, a Ctrl-C or a result.

The loop runs most trials through ``study.optimize``; a population's members and a continuation
are asked (or created) and told here instead, with the same rules: a failure stays inside its
trial, an interrupted configuration is requeued, and every result is told at once.
"""
from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..redaction import redact
from ..schema import TrialKey


class TrialFailed(Exception):
    """A trial that cannot produce a score (NaN loss, build error); the search goes on."""


def note_crash(trial: optuna.Trial, exc: BaseException, errors_log: Path) -> None:
    """Record an unexpected error on the trial and its traceback in the run's error log."""
    trial.set_user_attr(TrialKey.FAIL_REASON, redact(f"{type(exc).__name__}: {str(exc).strip()[:300]}"))
    trial.set_user_attr(TrialKey.STOP_REASON, "error")
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


class Told:
    """Trials run outside ``study.optimize`` (a population's, a continuation) and which of them the
    study has been told about."""

    def __init__(self, study: optuna.Study, errors_log: Path) -> None:
        self.study, self.errors_log = study, errors_log
        self.open: list[optuna.Trial] = []
        self.done: list[FrozenTrial] = []

    def settle(self, trial: optuna.Trial, work: Callable[[], object]) -> object | None:
        """Run ``work`` for ``trial``; a failure or pruning is told at once (``None`` returned)."""
        try:
            return work()
        except optuna.TrialPruned:
            self.tell(trial, state=TrialState.PRUNED)
        except TrialFailed:
            self.tell(trial, state=TrialState.FAIL)
        except Exception as exc:  # noqa: BLE001 - one trial's crash must not end the search
            note_crash(trial, exc, self.errors_log)
            self.tell(trial, state=TrialState.FAIL)
        return None

    def tell(self, trial: optuna.Trial, value: object = None, state: TrialState | None = None) -> None:
        self.open.remove(trial)
        self.done.append(self.study.tell(trial, value, state=state))  # type: ignore[arg-type]
