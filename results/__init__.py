"""Reading finished or running searches: figures, the HTML dashboard, config export.

Only Optuna, plotly, numpy and PyYAML are used here, plus ``search.schema`` (the keys,
file names and best-trial rule shared with the search; it needs only Optuna and numpy).
Nothing imports TensorFlow or the rest of ``search``, so results can be inspected on any
machine that can reach the study storage.
"""

from __future__ import annotations

from .dashboard import write_dashboard, write_data_report
from .export import best_config, format_config, studies_table
from .figures import (
    plot_class_distribution,
    plot_class_examples,
    plot_confusion,
    plot_export_artifacts,
    plot_final_options,
    plot_final_summary,
    plot_history,
    plot_importance,
    plot_learning_curves,
    plot_misclassified,
    plot_parallel,
    plot_pareto,
    plot_per_class,
    plot_reliability,
    plot_slices,
    plot_summary,
    plot_timeline,
    plot_top_trials,
)
from .runfiles import RunFiles, load_run_files
from .storage import load_study

__all__ = [
    "RunFiles",
    "best_config",
    "format_config",
    "load_run_files",
    "load_study",
    "plot_class_distribution",
    "plot_class_examples",
    "plot_confusion",
    "plot_export_artifacts",
    "plot_final_options",
    "plot_final_summary",
    "plot_history",
    "plot_importance",
    "plot_learning_curves",
    "plot_misclassified",
    "plot_parallel",
    "plot_pareto",
    "plot_per_class",
    "plot_reliability",
    "plot_slices",
    "plot_summary",
    "plot_timeline",
    "plot_top_trials",
    "studies_table",
    "write_dashboard",
    "write_data_report",
]
