"""The Pareto front of accuracy against model size (``--objective accuracy,params``)."""

from __future__ import annotations

from typing import NamedTuple

import plotly.graph_objects as go
from optuna.study import Study

from ._common import (
    complete_trials,
    family_of,
    finite,
    fmt_count,
    fmt_value,
    is_multi_objective,
    note_figure,
    objective_names,
    plot_text,
    point_of,
    primary_value,
)


class ParetoPoint(NamedTuple):
    number: int
    values: tuple[float, float]
    is_pareto: bool
    family: str | None
    point: str | None


class ParetoInfo(NamedTuple):
    """Complete trials of a two-objective study with their Pareto membership."""

    objectives: list[str]
    directions: list[str]
    points: list[ParetoPoint]
    note: str | None

    @property
    def front(self) -> list[ParetoPoint]:
        return sorted((p for p in self.points if p.is_pareto), key=lambda p: p.values[1])


def _pareto_info(study: Study) -> ParetoInfo:
    names = objective_names(study)
    directions = [d.name.lower() for d in study.directions]
    if not is_multi_objective(study):
        return ParetoInfo(names, directions, [], "Single-objective study: there is no Pareto front.")
    try:
        front_ids = {t.number for t in study.best_trials}
    except (ValueError, RuntimeError):
        front_ids = set()
    points = []
    for trial in complete_trials(study):
        second = finite(trial.values[1]) if len(trial.values) > 1 else None
        if second is None:
            continue
        points.append(
            ParetoPoint(
                trial.number,
                (primary_value(trial), second),  # type: ignore[arg-type]
                trial.number in front_ids,
                family_of(trial),
                point_of(trial),
            )
        )
    note = None if points else "No trial has completed yet."
    return ParetoInfo(names, directions, points, note)


def _draw_pareto(info: ParetoInfo) -> go.Figure:
    title = "Pareto front"
    if not info.points:
        return note_figure(title, info.note or "Nothing to show.")
    fig = go.Figure()
    others = [p for p in info.points if not p.is_pareto]
    front = info.front
    is_params = info.objectives[1] == "params"
    objectives = [plot_text(name) for name in info.objectives]

    def hover(p: ParetoPoint) -> str:
        second = fmt_count(p.values[1]) if is_params else fmt_value(p.values[1])
        extra = ", ".join(plot_text(x) for x in (p.family, p.point) if x)
        label = f" ({extra})" if extra else ""
        return f"trial {p.number}{label}<br>{objectives[0]} {p.values[0]:.4f}<br>{objectives[1]} {second}"

    if others:
        fig.add_trace(
            go.Scatter(
                x=[p.values[1] for p in others],
                y=[p.values[0] for p in others],
                mode="markers",
                name="dominated",
                marker=dict(color="#c7c7c7", size=7),
                hovertext=[hover(p) for p in others],
                hoverinfo="text",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[p.values[1] for p in front],
            y=[p.values[0] for p in front],
            mode="lines+markers",
            name="Pareto front",
            line=dict(color="#d62728", shape="hv"),
            marker=dict(size=10),
            hovertext=[hover(p) for p in front],
            hoverinfo="text",
        )
    )
    positive = all(p.values[1] > 0 for p in info.points)
    fig.update_layout(
        title=dict(text=title),
        template="plotly_white",
        height=450,
        xaxis=dict(title=f"{objectives[1]} ({info.directions[1]})", type="log" if is_params and positive else None),
        yaxis=dict(title=f"{objectives[0]} ({info.directions[0]})"),
    )
    return fig


def plot_pareto(study: Study) -> go.Figure:
    """Validation accuracy vs parameter count, Pareto-optimal trials joined (multi-objective)."""
    return _draw_pareto(_pareto_info(study))
