"""The search loop: data once, then trials until the study's target or the time budget is reached.

Each trial runs through ``lifecycle.TrialRun`` (Optuna's heartbeat, failures kept inside the trial,
Ctrl-C requeues it), while this loop decides when to stop: the study's target of finished trials
(shared by every worker on the study), ``--timeout``, too many failures in a row, or Ctrl-C.
Every finished trial is in storage the moment it ends, so an interruption or a crash loses at
most the trial that was running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..config import SearchConfig
from ..data import Dataset
from ..data.prepare import prepare_data
from ..errors import UserError
from ..schema import FINISHED, RunFile, SearchStop, TrialKey, count_states, redact
from .continuation import run_continuation
from .events import SearchEvents
from .interrupt import deferred_interrupts
from .lifecycle import TrialRun
from .objective import Objective
from .outcome import CutTrial, TrialPlan
from .population import resolve_population
from .population_trials import population_size, run_population
from .run import Run, open_run
from .study import fail_dead_local_trials, settle_target, stored_target

if TYPE_CHECKING:
    from spaces.space import Space

POLL_SECONDS = 2.0


@dataclass
class SearchOutcome:
    study: optuna.Study
    dataset: Dataset
    stop_reason: SearchStop
    finished: int


class SearchStopped(UserError):
    """Too many consecutive failures: something is wrong with the space, the data or the machine."""


def run_search(
    cfg: SearchConfig,
    *,
    dataset: Dataset | None = None,
    space: Space | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    events: SearchEvents | None = None,
    worker_index: int = 0,
    extend: bool = True,
    started: float | None = None,
    reserve: Callable[[optuna.Study], float] | None = None,
) -> SearchOutcome:
    """``open_run`` then ``search``: for callers holding settings only (tests, benchmarks, a
    ``--workers`` child); the data is loaded here when not given."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    events = events or SearchEvents()
    dataset = dataset or prepare_data(cfg, events.say)
    run = open_run(cfg, dataset, space=space, pruner=pruner, worker_index=worker_index, say=events.say)
    return search(run, events=events, extend=extend, started=started, reserve=reserve)


def search(
    run: Run,
    *,
    events: SearchEvents | None = None,
    extend: bool = True,
    started: float | None = None,
    reserve: Callable[[optuna.Study], float] | None = None,
) -> SearchOutcome:
    """Run (or resume, or join) the run's study; returns when it should stop.

    ``extend=False`` (``join``) works towards the study's stored target and never starts a new
    campaign, so a restarted worker cannot add trials to a study that reached its target.
    ``--timeout`` counts from ``started`` (``time.monotonic()``; default now), and the search stops
    ``reserve(study)`` seconds before it, leaving that time to whatever the caller runs next.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    events = events or SearchEvents()
    cfg, study = run.cfg, run.study
    population = resolve_population(cfg)
    target = _begin(run, events, extend, population)
    deadline = (started if started is not None else time.monotonic()) + cfg.timeout if cfg.timeout else None
    objective = Objective(run.dataset, run.space, cfg, target=target, events=events)
    errors_log = cfg.run_dir / RunFile.ERRORS_LOG
    streak = FailureStreak(cfg.max_failures, errors_log, cfg.storage_url)
    cut: CutTrial | None = None  # the best trial so far, cut short by the time cap: on from its weights next
    with deferred_interrupts() as stop:
        while True:
            stop.raise_if_requested()  # a Ctrl-C between trials
            counts = count_states(study.get_trials(deepcopy=False))
            finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
            search_end = deadline - reserve(study) if deadline is not None and reserve else deadline
            stop_reason = _stop_reason(finished, target, search_end)
            if stop_reason is not None:
                break
            if finished + counts[TrialState.RUNNING] >= target and not counts[TrialState.WAITING]:
                time.sleep(POLL_SECONDS)  # other workers hold the last trials; wait for them (or their death)
                fail_dead_local_trials(study)
                continue
            size = population_size(
                population, target - finished - counts[TrialState.RUNNING], counts[TrialState.WAITING]
            )
            trials, cut = _run_next(study, objective, errors_log, TrialPlan(search_end, cut), size)
            for trial in trials:
                if trial is not None and not trial.user_attrs.get(TrialKey.SURPLUS):
                    finished += trial.state in FINISHED
                    events.trial_ended(study, trial)
                    streak.add(trial)
    return SearchOutcome(study=study, dataset=run.dataset, stop_reason=stop_reason, finished=finished)


def _begin(run: Run, events: SearchEvents, extend: bool, population: int) -> int:
    """Fail this host's dead trials, settle the campaign's target, say what the search is; the target."""
    cfg, study = run.cfg, run.study
    revived = fail_dead_local_trials(study)
    if revived:
        events.say(f"marked trials {revived} failed: their worker process had died (retried once)")
    target = settle_target(study, cfg.trials) if extend else stored_target(study)
    counts = count_states(study.get_trials(deepcopy=False))
    events.say(
        f"study {cfg.study_name!r}: {counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]} "
        f"finished trials, target {target}; space {cfg.space}, sampler {cfg.sampler}, pruner "
        f"{run.pruner_name}, up to {cfg.epochs} epochs per trial"
        + (f", populations of {population} trials" if population > 1 else "")
        + (f", {cfg.timeout:.0f}s budget" if cfg.timeout else "")
    )
    if events.on_start is not None:
        events.on_start(study, target)
    return target


def _stop_reason(finished: int, target: int, search_end: float | None) -> SearchStop | None:
    if finished >= target:
        return SearchStop.TARGET
    if search_end is not None and time.monotonic() >= search_end:
        return SearchStop.TIMEOUT
    return None


class FailureStreak:
    """Failed trials in a row; too many stop the search, since something is wrong with the space,
    the data or the machine."""

    def __init__(self, limit: int, errors_log: Path, storage_url: str) -> None:
        self.limit, self.errors_log, self.storage_url = limit, errors_log, storage_url
        self.count = 0

    def add(self, trial: FrozenTrial) -> None:
        self.count = self.count + 1 if trial.state == TrialState.FAIL else 0
        if self.count >= self.limit:
            reason = trial.user_attrs.get(TrialKey.FAIL_REASON, f"see {self.errors_log}")
            raise SearchStopped(
                f"stopping: {self.count} trials in a row failed (last: {reason}); completed "
                f"trials are kept in {redact(self.storage_url)}"
            )


def _run_next(
    study: optuna.Study, objective: Objective, errors_log: Path, plan: TrialPlan, size: int
) -> tuple[list[FrozenTrial | None], CutTrial | None]:
    """The next trials: the cut trial's continuation first, else a population, else one trial."""
    if plan.resume is not None:
        continued, cut = run_continuation(study, objective, errors_log, plan)
        return [continued], cut
    if size > 1:
        trials, cut = run_population(study, objective, errors_log, size, plan)
        return list(trials), cut
    one, cut = _run_one(study, objective, errors_log, plan)
    return [one], cut


def _run_one(
    study: optuna.Study, objective: Objective, errors_log: Path, plan: TrialPlan
) -> tuple[FrozenTrial | None, CutTrial | None]:
    """Run the study's next trial (``TrialRun``: heartbeat, failures stay inside it, Ctrl-C requeues it
    and leaves); returns it once told (None when it was never started) and the cut it left."""
    with TrialRun(study, errors_log) as run:
        trial = run.ask()
        scored = run.run(trial, lambda: objective(trial, plan))
    return (run.done[0] if run.done else None), (scored.cut if scored is not None else None)
