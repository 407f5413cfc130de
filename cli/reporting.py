"""What a person sees of a running search: the progress lines and the dashboard, as engine callbacks."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from search.config import SearchConfig
from search.engine.events import SearchEvents
from search.progress import Progress, summary_table
from search.schema import FINISHED, tie_break_of


def search_events(cfg: SearchConfig, progress: Progress) -> SearchEvents:
    """The progress printer, and a dashboard refresh every ``cfg.dashboard_every`` finished trials."""
    events = progress.events()
    if cfg.dashboard_every:
        since = 0

        def refresh(study: optuna.Study, trial: FrozenTrial) -> None:
            nonlocal since
            since += trial.state in FINISHED
            if since >= cfg.dashboard_every:
                since = 0
                write_dashboard_safely(study, cfg.run_dir, progress)

        events.on_trial_end.append(refresh)
    return events


def write_dashboard_safely(study: optuna.Study, run_dir: Path, progress: Progress) -> Path | None:
    """Regenerate the dashboard; a reporting problem must never end a search."""
    try:
        from results.dashboard import write_dashboard
    except ImportError:
        return None
    try:
        return write_dashboard(study, run_dir)
    except Exception as exc:
        progress.say(f"warning: dashboard not written ({type(exc).__name__}: {exc})")
        return None


def print_summary(study: optuna.Study, progress: Progress) -> None:
    progress.say(summary_table(study.get_trials(deepcopy=False), tie_break=tie_break_of(study)))
