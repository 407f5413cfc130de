"""Hyperparameter figures: importance, parallel coordinates, slice plots.

Conditional parameters (e.g. ``cnn/filters_0`` only when ``family`` is cnn) are
missing from some trials; every figure here shows them as "n/a" or leaves the
trial out of that one panel, never failing on them. The parallel-coordinates plot
is drawn with plain SVG lines rather than ``go.Parcoords`` because Parcoords needs
WebGL, which headless or GPU-less browsers often lack.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.study import Study
from optuna.trial import FrozenTrial
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from ._common import (
    complete_trials,
    fmt_value,
    is_multi_objective,
    maximizes,
    note_figure,
    objective_names,
    param_distribution,
    param_kind,
    plot_text,
    primary_value,
    short,
)

MIN_TRIALS_FOR_IMPORTANCE = 2
NA = "n/a"


class ImportanceInfo(NamedTuple):
    """Normalised importances, most important first (empty with a note when unavailable)."""

    importances: dict[str, float]
    evaluator: str
    target: str
    n_trials: int
    note: str | None


def _importance_info(study: Study) -> ImportanceInfo:
    ranked = complete_trials(study)
    target_name = objective_names(study)[0]
    evaluator_name = "PED-ANOVA"
    params = sorted({p for t in ranked for p in t.distributions})
    if len(ranked) < MIN_TRIALS_FOR_IMPORTANCE:
        return ImportanceInfo(
            {},
            evaluator_name,
            target_name,
            len(ranked),
            f"Importance needs at least {MIN_TRIALS_FOR_IMPORTANCE} complete trials (have {len(ranked)}).",
        )
    if not params:
        return ImportanceInfo({}, evaluator_name, target_name, len(ranked), "The trials have no hyperparameters.")
    # PED-ANOVA treats lower targets as better when a target is given, hence the sign.
    target = None
    if is_multi_objective(study) or not maximizes(study):
        sign = -1.0 if maximizes(study) else 1.0
        target = lambda t: sign * t.values[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(), target=target, normalize=False)
    except Exception as exc:  # importance is optional; say why instead of failing
        return ImportanceInfo(
            {},
            evaluator_name,
            target_name,
            len(ranked),
            f"Importance could not be computed ({exc.__class__.__name__}: {exc}).",
        )
    clean = {k: float(v) if math.isfinite(v) and v > 0 else 0.0 for k, v in raw.items()}
    total = sum(clean.values())
    if total <= 0:
        note = "All importances are zero: too few trials, or no parameter separates good from bad trials yet."
        return ImportanceInfo({k: 0.0 for k in sorted(clean)}, evaluator_name, target_name, len(ranked), note)
    ordered = dict(sorted(((k, v / total) for k, v in clean.items()), key=lambda kv: (-kv[1], kv[0])))
    return ImportanceInfo(ordered, evaluator_name, target_name, len(ranked), None)


def _draw_importance(info: ImportanceInfo) -> go.Figure:
    title = f"Hyperparameter importance for {info.target} ({info.evaluator})"
    if not info.importances or not any(info.importances.values()):
        return note_figure(title, info.note or "No importances.")
    names = list(info.importances)[::-1]
    values = [info.importances[n] for n in names]
    fig = go.Figure(
        go.Bar(  # parameter names are the y categories: tick labels and hover
            x=values,
            y=[plot_text(n) for n in names],
            orientation="h",
            marker=dict(color="#1f77b4"),
            text=[f"{v:.2f}" for v in values],
            textposition="outside",
            hoverinfo="x+y",
        )
    )
    fig.update_layout(
        title=dict(text=plot_text(title)),
        template="plotly_white",
        xaxis_title="importance (sums to 1)",
        height=max(250, 80 + 26 * len(names)),
        margin=dict(l=180),
    )
    return fig


def plot_importance(study: Study) -> go.Figure:
    """Which hyperparameters matter most for validation accuracy (needs >= 2 complete trials)."""
    return _draw_importance(_importance_info(study))


def _param_order(study: Study, ranked: list[FrozenTrial], params: list[str] | None) -> list[str]:
    """Requested params, else by importance (then name), ``family`` kept when present."""
    present = {p for t in ranked for p in t.params}
    if params is not None:
        return [p for p in params if p in present]
    importances = _importance_info(study).importances
    return sorted(present, key=lambda p: (-importances.get(p, 0.0), p != "family", p))


class Axis(NamedTuple):
    """One axis of a parallel-coordinates plot, positions normalised to [0, 1] (None: n/a)."""

    name: str
    kind: str
    positions: list[float | None]
    ticks: list[tuple[float, str]]
    missing: int


class ParallelInfo(NamedTuple):
    axes: list[Axis]
    numbers: list[int]
    values: list[float]
    maximize: bool
    note: str | None


def _numeric_axis(name: str, raw: list[Any], log: bool) -> Axis:
    nums = [float(v) if v is not None else None for v in raw]
    scaled = [(math.log10(v) if log and v > 0 else v) if v is not None else None for v in nums]
    present = [v for v in scaled if v is not None]
    low, high = (min(present), max(present)) if present else (0.0, 1.0)
    span = high - low
    positions = [None if v is None else (0.5 if span == 0 else (v - low) / span) for v in scaled]
    tick_at = [0.0, 0.5, 1.0] if span else [0.5]
    ticks = []
    for pos in tick_at:
        value = low + pos * span
        ticks.append((pos, fmt_value(10**value if log else value, 3)))
    return Axis(name, "log" if log else "numeric", positions, ticks, sum(v is None for v in nums))


def _categorical_axis(name: str, raw: list[Any], choices: list[Any]) -> Axis:
    labels = [str(c) for c in choices]
    for value in raw:
        if value is not None and str(value) not in labels:
            labels.append(str(value))
    count = len(labels)
    place = {label: (i / (count - 1) if count > 1 else 0.5) for i, label in enumerate(labels)}
    positions = [None if v is None else place[str(v)] for v in raw]
    return Axis(name, "categorical", positions, [(place[lb], lb) for lb in labels], sum(v is None for v in raw))


def _parallel_info(study: Study, params: list[str] | None = None, max_params: int = 8) -> ParallelInfo:
    ranked = complete_trials(study)
    maximize = maximizes(study)
    if len(ranked) < 2:
        return ParallelInfo(
            [], [], [], maximize, f"Parallel coordinates need at least 2 complete trials (have {len(ranked)})."
        )
    names = _param_order(study, ranked, params)[:max_params]
    if not names:
        return ParallelInfo([], [], [], maximize, "The trials have no hyperparameters.")
    axes = []
    for name in names:
        raw = [t.params.get(name) for t in ranked]
        dist = param_distribution(ranked, name)
        kind = param_kind(dist)
        if kind == "categorical" or any(isinstance(v, (str, bool)) for v in raw if v is not None):
            choices = list(getattr(dist, "choices", ()))
            axes.append(_categorical_axis(name, raw, choices))
        else:
            axes.append(_numeric_axis(name, raw, kind == "log"))
    values = [primary_value(t) for t in ranked]
    axes.append(_numeric_axis(objective_names(study)[0], values, False)._replace(kind="objective"))
    return ParallelInfo(axes, [t.number for t in ranked], values, maximize, None)  # type: ignore[arg-type]


_NA_POS = -0.12


_COLOR_BINS = 12


def _draw_parallel(info: ParallelInfo) -> go.Figure:
    """Lines binned into a dozen colours, one trace per bin (fast for big studies)."""
    title = "Parallel coordinates (best trials in dark colours)"
    if not info.axes:
        return note_figure(title, info.note or "Nothing to show.")
    fig = go.Figure()
    bins = _quality_bins(info)
    for b in sorted(bins):  # best bin drawn last, on top
        fig.add_trace(_bin_trace(info, bins[b], sample_colorscale("Viridis_r", [(b + 0.5) / _COLOR_BINS])[0]))
    fig.add_trace(_colour_bar(min(info.values), max(info.values), info.maximize))
    _draw_axes(fig, info)
    n_axes = len(info.axes)
    fig.update_layout(
        title=dict(text=title),
        template="plotly_white",
        height=480,
        xaxis=dict(
            tickvals=list(range(n_axes)),
            ticktext=[plot_text(short(a.name, 20)) for a in info.axes],
            range=[-0.2, n_axes - 0.4],
            showgrid=False,
            zeroline=False,
        ),
        yaxis=dict(visible=False, range=[_NA_POS - 0.08, 1.05]),
        hovermode="closest",
    )
    return fig


def _quality_bins(info: ParallelInfo) -> dict[int, list[int]]:
    """The trials (by index) in each of ``_COLOR_BINS`` bins of value, best in the highest bin."""
    low, high = min(info.values), max(info.values)
    span = (high - low) or 1.0
    bins: dict[int, list[int]] = {}
    for i, value in enumerate(info.values):
        quality = (value - low) / span if info.maximize else (high - value) / span
        bins.setdefault(min(int(quality * _COLOR_BINS), _COLOR_BINS - 1), []).append(i)
    return bins


def _bin_trace(info: ParallelInfo, members: list[int], color: str) -> go.Scatter:
    """One colour's trials as one line trace, broken between trials."""
    n_axes = len(info.axes)
    xs: list[int | None] = []
    ys: list[float | None] = []
    hover: list[str] = []
    for i in members:
        xs += [*range(n_axes), None]
        ys += [_NA_POS if a.positions[i] is None else a.positions[i] for a in info.axes] + [None]
        hover += [f"trial {info.numbers[i]}: {info.values[i]:.4f}"] * n_axes + [""]
    line = dict(color=color, width=1.5)
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line=line,
        opacity=0.75,
        showlegend=False,
        hovertext=hover,
        hoverinfo="text",
        connectgaps=False,
    )


def _colour_bar(low: float, high: float, maximize: bool) -> go.Scatter:
    """An invisible trace that carries the colour bar only."""
    marker = dict(
        colorscale="Viridis_r",
        cmin=low,
        cmax=high,
        color=[low],
        showscale=True,
        reversescale=not maximize,
        colorbar=dict(title=dict(text="value")),
    )
    return go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip", marker=marker)


def _draw_axes(fig: go.Figure, info: ParallelInfo) -> None:
    """Each parameter's vertical axis with its tick labels, and "n/a" where trials lack it."""
    for x, axis in enumerate(info.axes):
        fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, line=dict(color="#444", width=1))
        for pos, label in axis.ticks:
            fig.add_annotation(
                x=x,
                y=pos,
                text=plot_text(short(label, 16)),
                showarrow=False,
                xanchor="left",
                xshift=3,
                font=dict(size=10),
                bgcolor="rgba(255,255,255,0.7)",
            )
        if axis.missing:
            fig.add_annotation(
                x=x, y=_NA_POS, text=NA, showarrow=False, xanchor="left", xshift=3, font=dict(size=10, color="#888")
            )


def plot_parallel(study: Study, params: list[str] | None = None) -> go.Figure:
    """Parallel coordinates of the most important params; inactive params sit at "n/a"."""
    return _draw_parallel(_parallel_info(study, params))


class Slice(NamedTuple):
    """One param's values against the objective, only over trials where it is active."""

    param: str
    kind: str
    xs: list[Any]
    ys: list[float]
    numbers: list[int]
    categories: list[str] | None
    missing: int


class SlicesInfo(NamedTuple):
    slices: list[Slice]
    objective: str
    note: str | None


def _slices_info(study: Study, params: list[str] | None = None, max_params: int = 6) -> SlicesInfo:
    ranked = complete_trials(study)
    objective = objective_names(study)[0]
    if not ranked:
        return SlicesInfo([], objective, "No complete trial yet.")
    names = _param_order(study, ranked, params)[:max_params]
    slices = []
    for name in names:
        having = [t for t in ranked if name in t.params]
        dist = param_distribution(ranked, name)
        kind = param_kind(dist)
        xs: list[Any] = [t.params[name] for t in having]
        categories = None
        if kind == "categorical" or any(isinstance(v, (str, bool)) for v in xs):
            kind = "categorical"
            categories = [str(c) for c in getattr(dist, "choices", ())]
            xs = [str(v) for v in xs]
            categories += sorted({x for x in xs} - set(categories))
        slices.append(
            Slice(
                name,
                kind,
                xs,
                [primary_value(t) for t in having],  # type: ignore[misc]
                [t.number for t in having],
                categories,
                len(ranked) - len(having),
            )
        )
    note = None if slices else "The trials have no hyperparameters."
    return SlicesInfo(slices, objective, note)


def _draw_slices(info: SlicesInfo) -> go.Figure:
    title = f"Slice plots: {info.objective} against each hyperparameter"
    if not info.slices:
        return note_figure(title, info.note or "Nothing to show.")
    cols = min(3, len(info.slices))
    rows = -(-len(info.slices) // cols)
    titles = [plot_text(s.param) + (f" (n/a in {s.missing})" if s.missing else "") for s in info.slices]
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        vertical_spacing=0.18 / max(rows - 1, 1) if rows > 1 else 0.1,
    )
    for i, s in enumerate(info.slices):
        row, col = divmod(i, cols)
        fig.add_trace(_slice_trace(s, i), row=row + 1, col=col + 1)
        if s.kind == "categorical" and s.categories:
            fig.update_xaxes(
                tickvals=list(range(len(s.categories))),
                ticktext=[plot_text(short(c, 12)) for c in s.categories],
                range=[-0.5, len(s.categories) - 0.5],
                row=row + 1,
                col=col + 1,
            )
        elif s.kind == "log" and all(isinstance(x, (int, float)) and x > 0 for x in s.xs):
            fig.update_xaxes(type="log", row=row + 1, col=col + 1)
    fig.update_layout(title=dict(text=plot_text(title)), template="plotly_white", height=120 + 260 * rows)
    fig.update_yaxes(title_text=plot_text(info.objective), col=1)
    return fig


def _slice_trace(s: Slice, i: int) -> go.Scatter:
    """One parameter's trials as markers coloured by trial number (the first panel carries the colour bar)."""
    xs = list(s.xs)
    if s.kind == "categorical" and s.categories:
        # Jitter categorical points so equal choices do not hide each other.
        index = {c: j for j, c in enumerate(s.categories)}
        rng = np.random.default_rng(i)
        xs = [index[x] + float(rng.uniform(-0.15, 0.15)) for x in s.xs]
    marker = dict(
        color=s.numbers,
        colorscale="Blues",
        size=7,
        line=dict(color="#333", width=0.5),
        showscale=i == 0,
        colorbar=dict(title=dict(text="trial"), len=0.5) if i == 0 else None,
    )
    hover = [f"trial {n}: {plot_text(s.param)} = {plot_text(fmt_value(x))}" for n, x in zip(s.numbers, s.xs)]
    return go.Scatter(x=xs, y=s.ys, mode="markers", showlegend=False, marker=marker, hovertext=hover)


def plot_slices(study: Study, params: list[str] | None = None) -> go.Figure:
    """Objective against each of the most important params (trials where it is inactive left out)."""
    return _draw_slices(_slices_info(study, params))
