"""The one-file HTML dashboard of a study and its run folder.

Written atomically, with plotly.js inlined once, so it can be regenerated while a
search runs (a browser refresh never sees half a file) and opened offline anywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go

from search.schema import RunFile, StudyKey, write_text

from . import fig_data, fig_final, fig_model, fig_params, fig_pareto, fig_summary, fig_trials
from ._common import fmt_count, fmt_value, is_multi_objective, state_counts
from .html import Section, facts_table, figure_html, guarded, heading_html, note_html, page, sortable_table
from .runfiles import RunFiles, load_run_files
from .storage import load_study, snapshot

__all__ = ["load_study", "write_dashboard", "write_data_report"]


def _figure_block(name: str, info_fn: Callable[[], Any], draw_fn: Callable[[Any], go.Figure]) -> str:
    """Figure HTML plus its info's note (when it has one and the figure is drawn)."""

    def build() -> str:
        info = info_fn()
        fig = draw_fn(info)
        html = figure_html(fig, name)
        note = getattr(info, "note", None)
        if note and html.startswith('<div class="figure"'):
            html += note_html(note)
        return html

    return guarded(name, build)


def _top_trials_block(study: optuna.Study) -> str:
    def build() -> str:
        info = fig_summary._top_trials_info(study)
        if not info.rows:
            return note_html(info.note or "No complete trial yet.")
        rows = []
        for row in info.rows:
            cells = []
            for column, value in zip(info.columns, row):
                text = fig_summary._cell_text(column, value)
                key = (
                    value
                    if isinstance(value, (int, float)) and not isinstance(value, bool)
                    else ("" if value is None else str(value))
                )
                cells.append((text, key))
            rows.append(cells)
        caption = (
            f'<p class="explain">Top {len(info.rows)} of {info.n_complete} complete trials, best first. '
            "Click a column header to sort; \u2014 marks a parameter the trial did not use or a value "
            "it did not record (val_loss: validation loss at the best epoch, older trials lack it; "
            "robust: accuracy on a darkened / low-contrast copy of the validation images).</p>"
        )
        return caption + sortable_table(info.columns, rows)

    return guarded("top trials", build)


def _final_blocks(files: RunFiles) -> list[str]:
    """What the final model is and how it scores, the options it was chosen from, and its exports.

    Plain HTML tables (the options and artifacts sortable); a block the files say nothing about is
    left out, so reports from before the final stage compared options still render.
    """

    def summary() -> str:
        info = fig_final._final_summary_info(files.test_report, files.best_config)
        if info.note == fig_final.NO_FINAL:
            return note_html(info.note)
        rows = fig_final._final_rows(info)
        facts = [(label, text) for label, text in rows if label != "Note"]
        return facts_table(facts) + "".join(note_html(text) for label, text in rows if label == "Note")

    def options() -> str:
        info = fig_final._options_info(files.test_report, files.best_config)
        if not info.options:
            return ""
        rows = [fig_final._option_cells(o, chosen) for o, chosen in zip(info.options, info.chosen)]
        caption = (
            '<p class="explain">Every way of building the final model from the retrained candidates, '
            "scored on the validation set. The highlighted row (\u2713) is the one kept: the most correct "
            "validation images, options within one image of it decided by the lower NLL. TTA: predictions "
            "averaged over copies of each image shifted by a few pixels; temperature: the softmax scaling "
            "fitted on validation to calibrate confidences. Click a column header to sort.</p>"
        )
        return (
            heading_html("Options compared on validation") + caption + sortable_table(info.columns, rows, info.chosen)
        )

    def export() -> str:
        info = fig_final._export_info(files.export_report)
        if not info.artifacts:
            return ""
        rows = [fig_final._artifact_cells(a) for a in info.artifacts]
        caption = (
            f'<p class="explain">Files written from the final model for deployment ({RunFile.EXPORT_REPORT}); '
            "test accuracy and speed in each file's own runtime where the export step measured them; "
            f"same as .keras: the share of test images given the class {RunFile.BEST_MODEL} gives.</p>"
        )
        return heading_html("Exported artifacts") + caption + sortable_table(fig_final.EXPORT_COLUMNS, rows)

    return [guarded("final model", summary), guarded("final options", options), guarded("exported artifacts", export)]


def _data_blocks(overview: Mapping[str, Any] | None) -> list[str]:
    return [
        _figure_block(
            "class-examples",
            lambda: fig_data._examples_info(overview),
            lambda info: fig_model._draw_image_grid(info, label_size=9),
        ),
        _figure_block("class-distribution", lambda: fig_data._distribution_info(overview), fig_data._draw_distribution),
    ]


def _sections(study: optuna.Study, files: RunFiles) -> list[Section]:
    """The dashboard's sections in page order: the search, then the final model and the data."""
    pareto = [
        Section(
            "pareto",
            "Pareto front",
            "Validation accuracy against parameter count: red trials are not beaten on both at once.",
            [_figure_block("pareto", lambda: fig_pareto._pareto_info(study), fig_pareto._draw_pareto)],
        )
    ]
    return [
        *_search_sections(study, files),
        *(pareto if is_multi_objective(study) else []),
        *_final_sections(study, files),
    ]


def _param_order(study: optuna.Study) -> tuple[fig_params.ImportanceInfo, list[str] | None]:
    """The importance info, computed once: drawn, and used to order the parallel and slice plots."""
    try:
        importance = fig_params._importance_info(study)
    except Exception as exc:  # the dashboard must always be written
        importance = fig_params.ImportanceInfo({}, "PED-ANOVA", "val_accuracy", 0, f"Importance failed: {exc}")
    order = [p for p, v in importance.importances.items() if v > 0] or None
    if order is not None:
        present = {p for t in study.get_trials(deepcopy=False) for p in t.params}
        order += sorted(present - set(order))
    return importance, order


def _search_sections(study: optuna.Study, files: RunFiles) -> list[Section]:
    importance, order = _param_order(study)
    return [
        Section(
            "summary",
            "Summary",
            "What was searched, on which data, how many trials finished in each state, and how good the "
            "best model is on validation and (once evaluated) on test data.",
            [_figure_block("summary", lambda: fig_summary._summary_info(study, files), fig_summary._draw_summary)],
        ),
        Section(
            "history",
            "Optimisation history",
            "Validation accuracy of every finished trial in the order it ran. The green step line is the best "
            "so far; stars are the hand-written named points (e.g. the tutorial network) that the sampler "
            "started from.",
            [_figure_block("history", lambda: fig_trials._history_info(study), fig_trials._draw_history)],
        ),
        Section(
            "curves",
            "Learning curves",
            "Validation accuracy after each epoch. Grey dashed curves were stopped early by the pruner (the cross "
            "marks where), red dotted ones failed; the thick green curve is the best trial.",
            [_figure_block("learning-curves", lambda: fig_trials._curves_info(study), fig_trials._draw_curves)],
        ),
        Section(
            "params",
            "Hyperparameters",
            "Which hyperparameters mattered (PED-ANOVA importance on complete trials), how the good trials "
            "combine them, and how accuracy varies along each one. Parameters that only exist for one model "
            "family are shown as n/a (or left out of that panel) for trials of the other family.",
            [
                _figure_block("importance", lambda: importance, fig_params._draw_importance),
                _figure_block("parallel", lambda: fig_params._parallel_info(study, order), fig_params._draw_parallel),
                _figure_block("slices", lambda: fig_params._slices_info(study, order), fig_params._draw_slices),
            ],
        ),
        Section(
            "timeline",
            "Timeline",
            "When each trial ran, one row per worker (or per trial), coloured by state; overlapping bars on "
            "different rows are parallel workers.",
            [_figure_block("timeline", lambda: fig_trials._timeline_info(study), fig_trials._draw_timeline)],
        ),
    ]


def _final_sections(study: optuna.Study, files: RunFiles) -> list[Section]:
    names = files.class_names
    return [
        Section(
            "model",
            "Final model on the test set",
            "The best configurations retrained and combined into the final model, evaluated once on the "
            "held-out test set: what it is and how it was chosen, which classes it confuses, per-class "
            "accuracy (worst first), how well its confidence matches its accuracy, and some of the images "
            "it got wrong.",
            [
                *_final_blocks(files),
                _figure_block(
                    "confusion", lambda: fig_model._confusion_info(files.test_report), fig_model._draw_confusion
                ),
                _figure_block(
                    "per-class", lambda: fig_model._per_class_info(files.test_report), fig_model._draw_per_class
                ),
                _figure_block(
                    "reliability", lambda: fig_model._reliability_info(files.test_report), fig_model._draw_reliability
                ),
                _figure_block(
                    "misclassified",
                    lambda: fig_model._misclassified_info(files.misclassified, names),
                    fig_model._draw_image_grid,
                ),
            ],
        ),
        Section(
            "trials",
            "Top trials",
            "The best complete trials with all their hyperparameters, ranked as the search ranks them: "
            "validation accuracy, equal accuracies by the lower validation loss, then the earlier trial.",
            [_top_trials_block(study)],
        ),
        Section(
            "data",
            "The data",
            "One training image per class and how many images each class has in every split; strongly "
            "unbalanced classes tend to be the ones the model gets wrong.",
            _data_blocks(files.data_overview),
        ),
    ]


def _subtitle(study: optuna.Study, files: RunFiles) -> str:
    attrs = study.user_attrs
    counts = state_counts(study)
    bits = [
        f"space {attrs.get(StudyKey.SPACE, '?')}",
        f"data {attrs.get(StudyKey.DATA_DIR, '?')}",
        f"{sum(counts.values())} trials",
    ]
    if counts.get("RUNNING"):
        bits.append(f"search running ({counts['RUNNING']} trials in progress)")
    best = files.best_config or {}
    if best.get("test_accuracy") is not None:
        bits.append(f"test accuracy {fmt_value(best.get('test_accuracy'))}")
    if best.get("params") is not None:
        bits.append(f"{fmt_count(best.get('params'))} parameters")
    return " · ".join(bits)


def write_dashboard(study: optuna.Study, run_dir: Path, out: Path | None = None) -> Path:
    """Write the dashboard of ``study`` and the files in ``run_dir`` to one offline HTML file.

    Defaults to ``run_dir/dashboard.html``; returns the path written.
    """
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / RunFile.DASHBOARD
    study = snapshot(study)
    files = load_run_files(run_dir)
    generated = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    text = page(
        title=f"Hyperparameter search: {study.study_name}",
        subtitle=_subtitle(study, files) + f" · generated {generated}",
        sections=_sections(study, files),
        footer=f"Generated {generated} from {run_dir} — self-contained, works offline.",
    )
    return write_text(out, text)


def write_data_report(overview: Mapping[str, Any], out: Path, title: str) -> Path:
    """Write only the data section (examples per class and class distribution) as one HTML file."""
    overview = dict(overview) if overview is not None else None  # an open NpzFile reads lazily
    counts = []
    if overview is not None:
        for split, key in fig_data.SPLITS:
            if key in overview:
                counts.append(f"{split} {int(sum(overview[key]))}")
    subtitle = ("images: " + ", ".join(counts)) if counts else "data overview"
    section = Section(
        "data",
        "The data",
        "One image per class, and how many images each class has in every split.",
        _data_blocks(overview),
    )
    return write_text(Path(out), page(title, subtitle, [section], footer=f"{title} — self-contained, works offline."))
