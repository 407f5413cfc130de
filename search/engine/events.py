"""What a running search or final stage tells its caller: their only way out.

The engine and the final stage print nothing and import neither the command line nor ``results/``. The command
line passes a ``SearchEvents`` with its progress printer and dashboard refresh; the benchmarks
pass recorders and probes through the same fields instead of subclassing engine classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial

TrialEnd = Callable[[optuna.Study, FrozenTrial], None]


def _silent(text: str) -> None:
    return None


@dataclass
class SearchEvents:
    """Callbacks of one search; every field has a do-nothing default."""

    say: Callable[[str], None] = _silent  # a message for a person: data report, study line, warnings
    on_start: Callable[[optuna.Study, int], None] | None = None  # (study, target) before the first trial
    on_trial_start: Callable[[optuna.Trial], None] | None = None  # the trial's objective is entered
    # Extra Keras callbacks for a trial's fit (probes, per-epoch progress).
    trial_callbacks: Callable[[optuna.Trial], Sequence[Any]] | None = None
    on_trial_end: list[TrialEnd] = field(default_factory=list)  # after every counted trial, in order
    # Extra Keras callbacks for one of the final stage's training runs, by (label, most epochs).
    run_callbacks: Callable[[str, int], Sequence[Any]] | None = None

    def run_hooks(self, label: str, epochs: int) -> list[Any]:
        """The caller's callbacks for one final-stage training run (none by default)."""
        return list(self.run_callbacks(label, epochs)) if self.run_callbacks else []

    def trial_ended(self, study: optuna.Study, trial: FrozenTrial) -> None:
        for callback in self.on_trial_end:
            callback(study, trial)
