"""Every dashboard section as a plain function returning a ``go.Figure``.

Study figures take an ``optuna.Study``; final-model and data figures take the loaded
run-folder files. Each is ``_draw_x(_x_info(...))`` in its own module, so the data
behind a figure can be checked without a browser.
"""

from __future__ import annotations

from .fig_data import plot_class_distribution, plot_class_examples
from .fig_final import plot_export_artifacts, plot_final_options, plot_final_summary
from .fig_model import plot_confusion, plot_misclassified, plot_per_class, plot_reliability
from .fig_params import plot_importance, plot_parallel, plot_slices
from .fig_pareto import plot_pareto
from .fig_summary import plot_summary, plot_top_trials
from .fig_trials import plot_history, plot_learning_curves, plot_timeline

__all__ = [
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
]
