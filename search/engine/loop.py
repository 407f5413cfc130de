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
from types import ModuleType

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..config import SearchConfig
from ..data import Dataset
from ..data.prepare import prepare_data
from ..errors import UserError
from ..schema import FINISHED, RunFile, TrialKey, count_states, redact
from .compiled import resolve_engine
from .continuation import run_continuation
from .events import SearchEvents
from .interrupt import deferred_interrupts
from .lifecycle import TrialRun
from .objective import Objective
from .population import resolve_population
from .population_trials import population_size, run_population
from .study import (
    check_user_space,
    fail_dead_local_trials,
    load_space,
    make_storage,
    open_study,
    settle_target,
    stored_target,
)

POLL_SECONDS = 2.0


@dataclass
class SearchOutcome:
    study: optuna.Study
    dataset: Dataset
    stop_reason: str  # target | timeout | failures
    finished: int


class SearchStopped(UserError):
    """Too many consecutive failures: something is wrong with the space, the data or the machine."""


def check_search(cfg: SearchConfig, dataset: Dataset) -> ModuleType:
    """What a search checks before it writes anything: the space loads and (a user's) builds on this
    data, and the engine and population settings suit the backend. Returns the space."""
    space = load_space(cfg.space)
    check_user_space(space, dataset.input_shape, dataset.n_classes)
    resolve_engine(cfg.engine)  # --engine compiled under another backend: one line before any trial
    resolve_population(cfg)
    return space


def run_search(cfg: SearchConfig, *, dataset: Dataset | None = None, space: ModuleType | None = None,
               pruner: optuna.pruners.BasePruner | None = None, events: SearchEvents | None = None,
               worker_index: int = 0, extend: bool = True, started: float | None = None,
               reserve: Callable[[optuna.Study], float] | None = None) -> SearchOutcome:
    """Run (or resume, or join) the study described by ``cfg``; returns when it should stop.

    ``extend=False`` (``join``) works towards the study's stored target and never starts a new
    campaign, so a restarted worker cannot add trials to a study that reached its target.
    ``--timeout`` counts from ``started`` (``time.monotonic()``; default now), and the search stops
    ``reserve(study)`` seconds before it, leaving that time to whatever the caller runs next.
    ``space`` is the space ``check_search`` returned, when the caller ran the checks already.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    events = events or SearchEvents()
    dataset = dataset or prepare_data(cfg, events.say)
    space = space or check_search(cfg, dataset)
    population = resolve_population(cfg)
    study = open_study(cfg, make_storage(cfg), dataset.content_hash, pruner, worker_index=worker_index,
                       say=events.say)
    revived = fail_dead_local_trials(study)
    if revived:
        events.say(f"marked trials {revived} failed: their worker process had died (retried once)")
    target = settle_target(study, cfg.trials) if extend else stored_target(study)
    finished0 = count_states(study.get_trials(deepcopy=False))
    events.say(f"study {cfg.study_name!r}: {finished0[TrialState.COMPLETE] + finished0[TrialState.PRUNED]} "
               f"finished trials, target {target}; space {cfg.space}, sampler {cfg.sampler}, pruner "
               f"{_pruner_name(cfg, pruner)}, up to {cfg.epochs} epochs per trial"
               + (f", populations of {population} trials" if population > 1 else "")
               + (f", {cfg.timeout:.0f}s budget" if cfg.timeout else ""))
    if events.on_start is not None:
        events.on_start(study, target)
    deadline = (started if started is not None else time.monotonic()) + cfg.timeout if cfg.timeout else None
    objective = Objective(dataset, space, cfg, target=target, deadline=deadline, events=events)
    errors_log = cfg.run_dir / RunFile.ERRORS_LOG
    consecutive_failures = 0
    with deferred_interrupts() as stop:
        while True:
            stop.raise_if_requested()  # a Ctrl-C between trials
            counts = count_states(study.get_trials(deepcopy=False))
            finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
            if finished >= target:
                stop_reason = "target"
                break
            search_end = deadline - reserve(study) if deadline is not None and reserve else deadline
            if search_end is not None and time.monotonic() >= search_end:
                stop_reason = "timeout"
                break
            objective.deadline = search_end
            if finished + counts[TrialState.RUNNING] >= target and not counts[TrialState.WAITING]:
                time.sleep(POLL_SECONDS)  # other workers hold the last trials; wait for them (or their death)
                fail_dead_local_trials(study)
                continue
            size = population_size(population, target - finished - counts[TrialState.RUNNING],
                                   counts[TrialState.WAITING])
            if objective.cut is not None:  # the best trial so far, cut short by the time cap: on from its weights
                trials = [run_continuation(study, objective, errors_log)]
            elif size > 1:
                trials = run_population(study, objective, errors_log, size)
            else:
                trials = [_run_one(study, objective, errors_log)]
            for trial in trials:
                if trial is None or trial.user_attrs.get(TrialKey.SURPLUS):
                    continue
                finished += trial.state in FINISHED
                events.trial_ended(study, trial)
                consecutive_failures = consecutive_failures + 1 if trial.state == TrialState.FAIL else 0
                if consecutive_failures >= cfg.max_failures:
                    reason = trial.user_attrs.get(TrialKey.FAIL_REASON, f"see {errors_log}")
                    raise SearchStopped(f"stopping: {consecutive_failures} trials in a row failed (last: "
                                        f"{reason}); completed trials are kept in {redact(cfg.storage_url)}")
    return SearchOutcome(study=study, dataset=dataset, stop_reason=stop_reason, finished=finished)


def _pruner_name(cfg: SearchConfig, pruner: optuna.pruners.BasePruner | None) -> str:
    if cfg.multi_objective:
        return "none (multi-objective)"
    return type(pruner).__name__ if pruner is not None else cfg.pruner


def _run_one(study: optuna.Study, objective: Objective, errors_log: Path) -> FrozenTrial | None:
    """Run the study's next trial (``TrialRun``: heartbeat, failures stay inside it, Ctrl-C requeues it
    and leaves); returns it once told, or None when it was never started."""
    with TrialRun(study, errors_log) as run:
        trial = run.ask()
        run.run(trial, lambda: objective(trial))
    return run.done[0] if run.done else None
