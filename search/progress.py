"""Terminal output of a search: one honest line per finished trial and a summary table at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from .engine.events import SearchEvents
from .formatting import format_duration, key_params
from .redaction import redact
from .schema import (
    FINISHED,
    TrialKey,
    best_trial,
    best_val_loss,
    count_finished,
    count_states,
    origin_of,
    rank_key,
    rankable,
    robust_val_accuracy,
    stopped_cost,
)


def bar(done: int, total: int, width: int = 20) -> str:
    total = max(total, 1)
    filled = min(width, int(width * done / total))
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def time_bar(elapsed: float, budget: float, width: int = 20) -> str:
    """The bar of a time budget: when ``--timeout`` binds, trials are not what runs out."""
    filled = min(width, int(width * elapsed / max(budget, 1e-9)))
    return "[" + "#" * filled + "." * (width - filled) + f"] {format_duration(elapsed)}/{format_duration(budget)}"


class Progress:
    """Prints a line per finished trial with a bar over the time budget (or the trial target)."""

    def __init__(
        self, target: int, *, timeout: float | None = None, stream: TextIO | None = None, epochs: int | None = None
    ) -> None:
        self.target, self.timeout, self.epochs = target, timeout, epochs
        self.stream = stream or sys.stdout
        self.start = time.monotonic()

    def epoch_callbacks(self, trial: optuna.Trial) -> list:  # -> list[keras.callbacks.Callback]
        """A live epoch line for every trial (``SearchEvents.trial_callbacks``)."""
        from .epoch_progress import EpochProgress  # Keras: imported only where training happens

        if not self.epochs:
            return []
        left = self.epochs - int(trial.user_attrs.get(TrialKey.RESUMED_EPOCHS, 0))  # a continuation's
        return [EpochProgress(f"trial {trial.number}", max(left, 1), stream=self.stream)]

    def run_callbacks(self, label: str, epochs: int) -> list:  # -> list[keras.callbacks.Callback]
        """A live epoch line for one of the final stage's training runs (``SearchEvents.run_callbacks``)."""
        from .epoch_progress import EpochProgress

        return [EpochProgress(label, epochs, stream=self.stream)]

    def say(self, text: str) -> None:
        """One message; every storage URL in it is shown without its password."""
        print(redact(text), file=self.stream, flush=True)

    def events(self) -> SearchEvents:
        """The engine callbacks that print this progress: messages and a line per trial."""
        return SearchEvents(
            say=self.say,
            on_start=self.started,
            on_trial_end=[self.trial_end],
            trial_callbacks=self.epoch_callbacks if self.epochs else None,
            run_callbacks=self.run_callbacks,
        )

    def started(self, study: optuna.Study, target: int) -> None:
        self.target = target

    def trial_end(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        best = best_trial(study)
        self.trial_line(trial, count_finished(trials), best.values[0] if best else None)

    def trial_line(self, trial: FrozenTrial, finished: int, best: float | None) -> None:
        ua = trial.user_attrs
        state = trial.state.name
        value = f"{trial.values[0]:.4f}" if trial.values else "  -   "
        if trial.state == TrialState.PRUNED and ua.get(TrialKey.VAL_CURVE):
            value = f"{max(ua[TrialKey.VAL_CURVE]):.4f}"
        loss = best_val_loss(trial)
        value += f" loss {loss:.4f}" if loss is not None else ""
        robust = robust_val_accuracy(trial)
        value += f" robust {robust:.4f}" if robust is not None else ""
        elapsed = time.monotonic() - self.start
        clock = "" if self.timeout else f" | {format_duration(elapsed)}"
        origin = origin_of(ua)
        point = f" [{origin}]" if origin else ""
        cost = (
            f"{ua.get(TrialKey.EPOCHS, 0)}ep {ua.get(TrialKey.SECONDS, 0):.0f}s {ua.get(TrialKey.PARAMS, 0) / 1e3:.0f}k"
        )
        best_txt = f"best {best:.4f}" if best is not None else "best -"
        counted = (
            time_bar(elapsed, self.timeout) + f" {finished}/{self.target} trials"
            if self.timeout
            else bar(finished, self.target)
        )
        line = (
            f"{counted} trial {trial.number:>3} {state:<8} val_acc {value} "
            f"{best_txt} | {cost}{clock}{point} {key_params(trial.params)}"
        )
        if trial.state == TrialState.FAIL and ua.get(TrialKey.FAIL_REASON):
            line += f"\n      failed: {ua[TrialKey.FAIL_REASON]}"
        self.say(line)


def summary_table(trials: Sequence[FrozenTrial], *, top: int = 5, tie_break: str = "loss") -> str:
    """Counts by state, total cost, and the best trials (ranked with the study's ``tie_break``) with
    their key parameters."""
    counts = {state.name: n for state, n in count_states(trials).items() if n}
    seconds = sum(float(t.user_attrs.get(TrialKey.SECONDS, 0.0)) for t in trials)
    done = sorted(rankable(trials), key=lambda t: rank_key(t, tie_break=tie_break), reverse=True)
    lines = [
        "Search summary",
        "  trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())),
        f"  training time: {format_duration(seconds)} in all, "
        f"{format_duration(seconds / max(len(trials), 1))} per trial",
    ]
    stopped = stopped_cost(trials)
    if any(n for n, _ in stopped.values()):
        lines.append(
            "  of which "
            + ", ".join(f"{kind} trials {n}: {format_duration(s)}" for kind, (n, s) in stopped.items() if n)
        )
    near = [t for t in trials if TrialKey.NEAR in t.user_attrs and t.state in FINISHED]
    if near:
        value = {t.number: t.values[0] for t in done}
        better = sum(1 for t in near if t.values and t.values[0] > value.get(t.user_attrs[TrialKey.NEAR], 1.0))
        lines.append(f"  local search: {len(near)} neighbours of the best trial tried, {better} beat it")
    if done:
        lines.append(
            f"  {'trial':>5} {'val_acc':>8} {'val_loss':>8} {'robust':>8} {'epochs':>6} {'seconds':>8} "
            f"{'params':>9}  parameters"
        )
        for t in done[:top]:
            ua = t.user_attrs
            loss, robust = best_val_loss(t), robust_val_accuracy(t)
            lines.append(
                f"  {t.number:>5} {t.values[0]:>8.4f} {loss if loss is not None else float('nan'):>8.4f} "
                f"{robust if robust is not None else float('nan'):>8.4f} "
                f"{ua.get(TrialKey.EPOCHS, 0):>6} {ua.get(TrialKey.SECONDS, 0):>8.1f} "
                f"{ua.get(TrialKey.PARAMS, 0):>9}  {key_params(t.params, 8)}"
            )
    else:
        lines.append("  no completed trial yet")
    return "\n".join(lines)
