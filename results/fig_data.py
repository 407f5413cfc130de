"""The data section: one example image per class and the class distribution per split.

Input is the content of ``data_overview.npz`` (any mapping with its keys), so the
same figures serve the dashboard and ``run_search.py data check DIR --html FILE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go

from search.schema import RunFile

from ._common import note_figure, plot_text, short
from .fig_model import ImageGridInfo, _draw_image_grid

NO_OVERVIEW = f"No {RunFile.DATA_OVERVIEW} in the run folder."
SPLITS = (("train", "counts_train"), ("valid", "counts_valid"), ("test", "counts_test"))


def _class_names(overview: Mapping[str, Any], n: int) -> list[str]:
    names = overview.get("class_names") if hasattr(overview, "get") else None
    listed = [str(x) for x in np.asarray(names).tolist()] if names is not None else []
    return [listed[i] if i < len(listed) else f"class {i}" for i in range(n)]


def _examples_info(overview: Mapping[str, Any] | None, cols: int = 11) -> ImageGridInfo:
    title = "One training image per class"
    if overview is None or "examples" not in overview:
        return ImageGridInfo([], [], [], cols, title, NO_OVERVIEW if overview is None else "No example images.")
    examples = np.asarray(overview["examples"])
    if examples.ndim not in (3, 4) or len(examples) == 0:
        return ImageGridInfo([], [], [], cols, title, "No example images.")
    n = len(examples)
    has = np.asarray(overview.get("has_example", np.ones(n, dtype=bool)), dtype=bool)
    has = np.pad(has, (0, max(0, n - len(has))))[:n]
    names = _class_names(overview, n)
    images = [examples[i] if has[i] else None for i in range(n)]
    labels = [f"{i}<br>{plot_text(short(names[i], 20))}" for i in range(n)]
    hovers = [
        f"class {i}: {plot_text(names[i])}" + ("" if has[i] else "<br>(no example in the data)") for i in range(n)
    ]
    note = None
    if not has.all():
        missing = [str(i) for i in range(n) if not has[i]]
        note = f"No example for class {', '.join(missing)} (grey tiles)."
    return ImageGridInfo(images, labels, hovers, cols, title, note)


def plot_class_examples(overview: Mapping[str, Any] | None) -> go.Figure:
    """Grid of one image per class, labelled with class id and name."""
    return _draw_image_grid(_examples_info(overview), label_size=9)


class DistributionInfo(NamedTuple):
    """Images per class for each split present (train, valid, optionally test)."""

    class_ids: list[int]
    names: list[str]
    counts: dict[str, list[int]]
    note: str | None


def _distribution_info(overview: Mapping[str, Any] | None) -> DistributionInfo:
    if overview is None:
        return DistributionInfo([], [], {}, NO_OVERVIEW)
    counts: dict[str, list[int]] = {}
    for split, key in SPLITS:
        if key in overview and overview[key] is not None:
            counts[split] = [int(c) for c in np.asarray(overview[key]).ravel().tolist()]
    if not counts:
        return DistributionInfo([], [], {}, "The data overview has no class counts.")
    n = max(len(c) for c in counts.values())
    counts = {split: c + [0] * (n - len(c)) for split, c in counts.items()}
    empty = [i for i in range(n) if counts.get("train", [1] * n)[i] == 0]
    note = f"Classes without training images: {', '.join(map(str, empty))}." if empty else None
    return DistributionInfo(list(range(n)), _class_names(overview, n), counts, note)


def _draw_distribution(info: DistributionInfo) -> go.Figure:
    title = "Class distribution per split"
    if not info.counts:
        return note_figure(title, info.note or NO_OVERVIEW)
    fig = go.Figure()
    colors = {"train": "#1f77b4", "valid": "#ff7f0e", "test": "#2ca02c"}
    for split, counts in info.counts.items():
        total = sum(counts) or 1
        fig.add_trace(
            go.Bar(
                name=f"{split} ({sum(counts)})",
                x=info.class_ids,
                y=counts,
                marker=dict(color=colors.get(split)),
                hovertext=[
                    f"{i}: {plot_text(name)}<br>{split}: {c} images ({c / total:.1%})"
                    for i, name, c in zip(info.class_ids, info.names, counts)
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title=dict(text=title),
        barmode="group",
        template="plotly_white",
        height=420,
        xaxis=dict(title="class id", dtick=1 if len(info.class_ids) <= 60 else None, tickfont=dict(size=9)),
        yaxis=dict(title="images"),
        legend=dict(orientation="h", y=1.1),
    )
    return fig


def plot_class_distribution(overview: Mapping[str, Any] | None) -> go.Figure:
    """Grouped bars of images per class for train / valid / test."""
    return _draw_distribution(_distribution_info(overview))
