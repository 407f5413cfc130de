"""Summary table and the table of top trials.

``plot_x(...)`` = ``_draw_x(_x_info(...))``: the info is plain data that tests check,
the draw step only turns it into plotly objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import plotly.graph_objects as go
from optuna.study import Study

from search.schema import (
    StudyKey,
    TrialKey,
    best_trial,
    best_val_loss,
    origin_of,
    ranked_trials,
    robust_val_accuracy,
    stopped_cost,
)

from ._common import (
    family_of,
    finite,
    fmt_count,
    fmt_seconds,
    fmt_value,
    is_multi_objective,
    note_figure,
    objective_names,
    plot_text,
    primary_value,
    state_counts,
    trials,
)
from .runfiles import RunFiles, load_run_files

#: Study attributes listed in the summary table as they are, in this order.
SUMMARY_ATTRS = (StudyKey.EPOCHS, StudyKey.SEED, StudyKey.TARGET, StudyKey.COMMAND, StudyKey.CREATED)


class SummaryInfo(NamedTuple):
    """Headline facts of one study and its run folder."""

    study_name: str
    space: str | None
    data_dir: str | None
    data_hash: str | None
    objectives: list[str]
    directions: list[str]
    state_counts: dict[str, int]
    n_trials: int
    best_value: float | None
    best_trial: int | None
    best_family: str | None
    test_accuracy: float | None
    total_seconds: float | None
    mean_seconds: float | None
    timed_trials: int
    stopped: dict[str, tuple[int, float]]  # "pruned" / "dead": trials and training seconds without a model
    attrs: dict[str, Any]
    test_facts: dict[str, Any]
    warnings: list[str]
    notes: list[str]


def _summary_info(study: Study, files: RunFiles | None = None) -> SummaryInfo:
    """Collect the summary; ``files`` are the run-folder files (none when omitted)."""
    files = files or RunFiles()
    attrs = dict(study.user_attrs)
    best = best_trial(study)
    seconds = [s for s in (finite(t.user_attrs.get(TrialKey.SECONDS)) for t in trials(study)) if s is not None]
    test_accuracy = finite((files.best_config or {}).get("test_accuracy"))
    if test_accuracy is None:
        test_accuracy = finite((files.test_report or {}).get("test_accuracy"))
    report = files.test_report or {}
    test_facts = {
        key: report[key] for key in ("n_test", "test_loss", "macro_f1", "duplicates_with_train") if key in report
    }
    notes = list(files.problems)
    counts = state_counts(study)
    if not sum(counts.values()):
        notes.append("The study has no trials yet.")
    elif best is None:
        notes.append("No trial has completed yet, so there is no best value.")
    if test_accuracy is None:
        notes.append("No test accuracy: the final model has not been evaluated on a test set (yet).")
    return SummaryInfo(
        study_name=study.study_name,
        space=_text(attrs.get(StudyKey.SPACE)),
        data_dir=_text(attrs.get(StudyKey.DATA_DIR)),
        data_hash=_text(attrs.get(StudyKey.DATA_HASH)),
        objectives=objective_names(study),
        directions=[d.name.lower() for d in study.directions],
        state_counts=counts,
        n_trials=sum(counts.values()),
        best_value=primary_value(best) if best else None,
        best_trial=best.number if best else None,
        best_family=family_of(best) if best else None,
        test_accuracy=test_accuracy,
        total_seconds=sum(seconds) if seconds else None,
        mean_seconds=sum(seconds) / len(seconds) if seconds else None,
        timed_trials=len(seconds),
        stopped=stopped_cost(trials(study)),
        attrs={k: attrs[k] for k in SUMMARY_ATTRS if k in attrs},
        test_facts=test_facts,
        warnings=files.warnings,
        notes=notes,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _summary_rows(info: SummaryInfo) -> list[tuple[str, str]]:
    """The (label, text) rows of the summary table, in reading order."""
    counts = ", ".join(f"{n} {state.lower()}" for state, n in info.state_counts.items() if n) or "none"
    best = "—"
    if info.best_value is not None:
        best = f"{fmt_value(info.best_value)} (trial {info.best_trial}"
        best += f", {info.best_family})" if info.best_family else ")"
    data = info.data_dir or "—"
    if info.data_hash:
        data += f"  [hash {info.data_hash[:12]}]"
    objectives = ", ".join(f"{n} ({d})" for n, d in zip(info.objectives, info.directions))
    rows = [
        ("Study", info.study_name),
        ("Data set", data),
        ("Search space", info.space or "—"),
        ("Objectives", objectives),
        ("Trials", f"{info.n_trials}: {counts}"),
        ("Best validation accuracy", best),
        ("Test accuracy (final model)", fmt_value(info.test_accuracy)),
    ]
    if info.test_facts:
        rows.append(("Test set", ", ".join(f"{k} = {fmt_value(v)}" for k, v in info.test_facts.items())))
    if info.total_seconds is not None:
        rows.append(
            (
                "Training time",
                f"{fmt_seconds(info.total_seconds)} in total, "
                f"{fmt_seconds(info.mean_seconds)} per trial ({info.timed_trials} timed trials)",
            )
        )
        (pruned, pruned_s), (dead, dead_s) = info.stopped["pruned"], info.stopped["dead"]
        share = (pruned_s + dead_s) / info.total_seconds if info.total_seconds else 0.0
        rows.append(
            (
                "Time on stopped trials",
                f"pruned: {pruned} trials, {fmt_seconds(pruned_s)}; dead (no "
                f"learning, NaN, failed): {dead} trials, {fmt_seconds(dead_s)}; {share:.0%} of the training "
                "time",
            )
        )
    for key, value in info.attrs.items():
        rows.append((key.replace("_", " ").capitalize(), fmt_value(value)))
    rows += [("Data warning", w) for w in info.warnings]
    rows += [("Note", n) for n in info.notes]
    return rows


def _draw_summary(info: SummaryInfo) -> go.Figure:
    """The summary rows as a table; every text is plain (study name, paths, command line, warnings)."""
    rows = _summary_rows(info)
    warn = ["#fff3cd" if label in ("Data warning", "Note") else "white" for label, _ in rows]
    fig = go.Figure(
        go.Table(
            columnwidth=[1, 3],
            header=dict(values=["", ""], height=0, line=dict(width=0), fill=dict(color="white")),
            cells=dict(
                values=[[f"<b>{plot_text(label)}</b>" for label, _ in rows], [plot_text(text) for _, text in rows]],
                align="left",
                height=26,
                fill=dict(color=[warn, warn]),
                line=dict(color="#eee"),
            ),
        )
    )
    fig.update_layout(
        title=dict(text=f"Study {plot_text(info.study_name)}"),
        height=80 + 30 * len(rows) + 20,
        margin=dict(l=10, r=10, t=50, b=10),
    )
    return fig


def plot_summary(study: Study, run_dir: Path | None = None) -> go.Figure:
    """Study name, data, space, trial counts, best and test accuracy, time, warnings."""
    return _draw_summary(_summary_info(study, load_run_files(run_dir)))


class TopTrialsInfo(NamedTuple):
    """Best complete trials, best first: one row per trial, cells as plain values."""

    columns: list[str]
    rows: list[list[Any]]
    n_complete: int
    note: str | None


#: Column of the validation loss at a trial's best epoch: the tie-break of equal accuracies.
VAL_LOSS = "val_loss"
#: Column of the best weights' accuracy on the perturbed validation copy (the tie-break ``robust``).
ROBUST = "robust"


def _top_trials_info(study: Study, n: int = 25) -> TopTrialsInfo:
    ranked = ranked_trials(study)  # best_trial first, then the search's own order
    top = ranked[:n]
    names = objective_names(study)
    value_cols = names if is_multi_objective(study) else names[:1]
    param_names: list[str] = []
    for trial in top:
        for name in trial.params:
            if name not in param_names and name != "family":  # already the "family" column
                param_names.append(name)
    param_names.sort()
    columns = [
        "trial",
        *value_cols,
        VAL_LOSS,
        ROBUST,
        "family",
        "origin",
        "epochs",
        "seconds",
        "parameters",
        *param_names,
    ]
    rows = []
    for trial in top:
        values = list(trial.values or [])
        attrs = trial.user_attrs
        row: list[Any] = [trial.number]
        row += [finite(values[i]) if i < len(values) else None for i in range(len(value_cols))]
        row += [
            best_val_loss(trial),
            robust_val_accuracy(trial),
            family_of(trial),
            origin_of(attrs),
            attrs.get(TrialKey.EPOCHS),
            finite(attrs.get(TrialKey.SECONDS)),
            attrs.get(TrialKey.PARAMS),
        ]
        row += [trial.params.get(p) for p in param_names]
        rows.append(row)
    note = None if top else "No complete trial yet."
    return TopTrialsInfo(columns=columns, rows=rows, n_complete=len(ranked), note=note)


def _cell_text(column: str, value: Any) -> str:
    if column == "seconds":
        return fmt_seconds(finite(value))
    if column == "parameters":
        return fmt_count(finite(value))
    return fmt_value(value)


def _draw_top_trials(info: TopTrialsInfo) -> go.Figure:
    if not info.rows:
        return note_figure("Top trials", info.note or "No complete trial yet.")
    columns = [[plot_text(_cell_text(c, row[i])) for row in info.rows] for i, c in enumerate(info.columns)]
    fig = go.Figure(
        go.Table(
            header=dict(
                values=[f"<b>{plot_text(c)}</b>" for c in info.columns], align="left", fill=dict(color="#e8eef7")
            ),
            cells=dict(values=columns, align="left"),
        )
    )
    fig.update_layout(
        title=dict(text=f"Top {len(info.rows)} of {info.n_complete} complete trials"),
        height=min(900, 120 + 24 * len(info.rows)),
        margin=dict(l=10, r=10, t=50, b=10),
    )
    return fig


def plot_top_trials(study: Study, n: int = 25) -> go.Figure:
    """Table of the best complete trials with their hyperparameters (the dashboard sorts it)."""
    return _draw_top_trials(_top_trials_info(study, n))
