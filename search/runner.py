"""The search loop: data once, then trials until the study's target or the time budget is reached.

Each trial runs through ``study.optimize(n_trials=1)`` so that Optuna's heartbeat and failure
handling wrap it, while this loop decides when to stop: the study's target of finished trials
(shared by every worker on the study), ``--timeout``, too many failures in a row, or Ctrl-C.
Every finished trial is in storage the moment it ends, so an interruption or a crash loses at
most the trial that was running.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

import spaces

from .config import SearchConfig
from .data import Dataset, load_dataset
from .errors import UserError
from .files import write_json
from .interrupt import deferred_interrupts
from .objective import Objective, TrialFailed
from .overview import data_overview, save_overview
from .progress import Progress, summary_table
from .sanity import sanity_report
from .study import (FINISHED, count_finished, count_states, fail_dead_local_trials, make_storage,
                    open_study, settle_target)

POLL_SECONDS = 2.0


@dataclass
class SearchOutcome:
    study: optuna.Study
    dataset: Dataset
    stop_reason: str  # target | timeout | failures
    finished: int


class SearchStopped(UserError):
    """Too many consecutive failures: something is wrong with the space, the data or the machine."""


def prepare_data(cfg: SearchConfig, progress: Progress) -> Dataset:
    """Load and check the data once for the process; the report is printed and saved with the run."""
    dataset = load_dataset(cfg.data_dir, n_classes=cfg.n_classes, valid_fraction=cfg.valid_fraction,
                           seed=cfg.seed)
    report = sanity_report(dataset)
    progress.say(report.text())
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(cfg.run_dir / "sanity_report.json", report.to_json())
    overview_path = cfg.run_dir / "data_overview.npz"
    if not overview_path.exists():
        save_overview(data_overview(dataset), overview_path)
    return dataset


def run_search(cfg: SearchConfig, *, dataset: Dataset | None = None,
               pruner: optuna.pruners.BasePruner | None = None,
               progress: Progress | None = None,
               objective_type: type[Objective] = Objective) -> SearchOutcome:
    """Run (or resume, or join) the study described by ``cfg``; returns when it should stop.

    ``objective_type`` is the seam for instruments: the benchmarks pass an ``Objective`` subclass
    that times each trial and adds a callback through ``Objective.epoch_hooks``.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    progress = progress or Progress(cfg.trials, timeout=cfg.timeout)
    space = spaces.get_space(cfg.space)
    dataset = dataset or prepare_data(cfg, progress)
    study = open_study(cfg, make_storage(cfg), dataset.content_hash, pruner)
    revived = fail_dead_local_trials(study)
    if revived:
        progress.say(f"marked trials {revived} failed: their worker process had died (retried once)")
    target = settle_target(study, cfg.trials)
    progress.target = target
    finished0 = count_finished(study)
    progress.say(f"study {cfg.study_name!r}: {finished0} finished trials, target {target}; space "
                 f"{cfg.space}, sampler {cfg.sampler}, pruner "
                 f"{_pruner_name(cfg, pruner)}, up to {cfg.epochs} "
                 f"epochs per trial" + (f", {cfg.timeout:.0f}s budget" if cfg.timeout else ""))
    deadline = time.monotonic() + cfg.timeout if cfg.timeout else None
    objective = objective_type(dataset, space, cfg, target=target, deadline=deadline)
    errors_log = cfg.run_dir / "errors.log"
    consecutive_failures = 0
    since_dashboard = 0
    with deferred_interrupts() as stop:
        while True:
            stop.raise_if_requested()  # a Ctrl-C between trials
            counts = count_states(study.get_trials(deepcopy=False))
            finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
            if finished >= target:
                stop_reason = "target"
                break
            if deadline is not None and time.monotonic() >= deadline:
                stop_reason = "timeout"
                break
            if finished + counts[TrialState.RUNNING] >= target and not counts[TrialState.WAITING]:
                time.sleep(POLL_SECONDS)  # other workers hold the last trials; wait for them (or their death)
                fail_dead_local_trials(study)
                continue
            trial = _run_one(study, objective, errors_log)
            if trial is None:
                continue
            if trial.user_attrs.get("surplus"):
                continue
            finished += trial.state in FINISHED
            progress.trial_line(trial, finished, _best_value(study))
            consecutive_failures = consecutive_failures + 1 if trial.state == TrialState.FAIL else 0
            if consecutive_failures >= cfg.max_failures:
                raise SearchStopped(f"stopping: {consecutive_failures} trials in a row failed (last: "
                                    f"{trial.user_attrs.get('fail_reason', 'see ' + str(errors_log))}); "
                                    f"completed trials are kept in {cfg.storage_url}")
            since_dashboard += trial.state in FINISHED
            if cfg.dashboard_every and since_dashboard >= cfg.dashboard_every:
                since_dashboard = 0
                write_dashboard_safely(study, cfg.run_dir, progress)
    return SearchOutcome(study=study, dataset=dataset, stop_reason=stop_reason, finished=finished)


def _pruner_name(cfg: SearchConfig, pruner: optuna.pruners.BasePruner | None) -> str:
    if cfg.multi_objective:
        return "none (multi-objective)"
    return type(pruner).__name__ if pruner is not None else cfg.pruner


def _run_one(study: optuna.Study, objective: Objective, errors_log: Path) -> FrozenTrial | None:
    """Run one trial; failures stay inside the trial, Ctrl-C leaves after recording it."""
    done: list[FrozenTrial] = []

    def logged_objective(trial: optuna.Trial) -> float | tuple[float, float]:
        try:
            return objective(trial)
        except (TrialFailed, optuna.TrialPruned):
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
            trial.set_user_attr("stop_reason", "interrupted")
            _requeue(study, trial)
            raise
        except Exception as exc:  # noqa: BLE001 - one trial's crash (OOM, bad config) must not end the search
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {str(exc).strip()[:300]}")
            trial.set_user_attr("stop_reason", "error")
            with open(errors_log, "a") as fh:
                fh.write(f"--- trial {trial.number} {trial.params}\n{traceback.format_exc()}\n")
            raise

    study.optimize(logged_objective, n_trials=1, catch=(Exception,), gc_after_trial=False,
                   callbacks=[lambda _study, frozen: done.append(frozen)])
    return done[0] if done else None


def _requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """An interrupted configuration is run again first when the study resumes."""
    attrs = {"requeued_from": trial.number}
    for key in ("point", "near"):  # where the configuration came from
        if key in trial.user_attrs:
            attrs[key] = trial.user_attrs[key]
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)


def _best_value(study: optuna.Study) -> float | None:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    return max(t.values[0] for t in done) if done else None


def write_dashboard_safely(study: optuna.Study, run_dir: Path, progress: Progress) -> Path | None:
    """Regenerate the dashboard; a reporting problem must never end a search."""
    try:
        from results.dashboard import write_dashboard
    except ImportError:
        return None
    try:
        return write_dashboard(study, run_dir)
    except Exception as exc:  # noqa: BLE001
        progress.say(f"warning: dashboard not written ({type(exc).__name__}: {exc})")
        return None


def print_summary(study: optuna.Study, progress: Progress) -> None:
    progress.say(summary_table(study.get_trials(deepcopy=False)))
