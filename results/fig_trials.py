"""Figures over trials: optimisation history, learning curves, timeline, Pareto front.

``plot_x(study)`` = ``_draw_x(_x_info(study))``; the info NamedTuples are what tests check.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import plotly.graph_objects as go
from optuna.study import Study
from optuna.trial import TrialState

from search.schema import TrialKey, best_trial

from ._common import (
    BEST_COLOR,
    POINT_COLOR,
    STATE_COLORS,
    complete_trials,
    curve_of,
    family_of,
    fmt_seconds,
    fmt_value,
    maximizes,
    note_figure,
    objective_names,
    plot_text,
    point_of,
    primary_value,
    trials,
)


class HistoryPoint(NamedTuple):
    number: int
    value: float
    state: str
    point: str | None
    family: str | None


class HistoryInfo(NamedTuple):
    """Values by trial number; pruned trials carry their last reported accuracy."""

    objective: str
    maximize: bool
    complete: list[HistoryPoint]
    pruned: list[HistoryPoint]
    best_so_far: list[tuple[int, float]]
    named: list[HistoryPoint]
    n_failed: int
    note: str | None


def _history_info(study: Study) -> HistoryInfo:
    maximize = maximizes(study)
    complete = [
        HistoryPoint(t.number, primary_value(t), "COMPLETE", point_of(t), family_of(t))  # type: ignore[arg-type]
        for t in complete_trials(study)
    ]
    pruned = []
    for trial in trials(study, TrialState.PRUNED):
        _, values = curve_of(trial)
        if values:
            pruned.append(HistoryPoint(trial.number, values[-1], "PRUNED", point_of(trial), family_of(trial)))
    best_so_far: list[tuple[int, float]] = []
    best: float | None = None
    for p in sorted(complete):
        if best is None or (p.value > best if maximize else p.value < best):
            best = p.value
        best_so_far.append((p.number, best))
    named = sorted([p for p in complete + pruned if p.point], key=lambda p: p.number)
    n_failed = len(trials(study, TrialState.FAIL))
    note = None
    if not complete and not pruned:
        note = "No trial has finished yet." if not n_failed else f"All {n_failed} finished trials failed."
    elif not complete:
        note = "No trial has completed; grey crosses are pruned trials' last validation accuracy."
    return HistoryInfo(
        objective_names(study)[0], maximize, sorted(complete), sorted(pruned), best_so_far, named, n_failed, note
    )


def _draw_history(info: HistoryInfo) -> go.Figure:
    title = "Optimisation history"
    if not info.complete and not info.pruned:
        return note_figure(title, info.note or "No trial has finished yet.")
    fig = go.Figure(_history_traces(info))
    subtitle = f" ({info.n_failed} failed trials not shown)" if info.n_failed else ""
    fig.update_layout(
        title=dict(text=title + subtitle),
        xaxis_title="trial",
        yaxis_title=plot_text(info.objective),
        template="plotly_white",
        height=450,
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def _history_traces(info: HistoryInfo) -> list[go.Scatter]:
    """Complete and pruned trials as markers, the best-so-far step line, the named points as stars."""
    traces = []
    if info.complete:
        hover = [f"trial {p.number} ({plot_text(p.family or '?')})" for p in info.complete]
        marker = dict(color=STATE_COLORS["COMPLETE"], size=8)
        traces.append(_points(info.complete, "complete", marker, hover))
    if info.pruned:
        hover = [f"trial {p.number} pruned ({plot_text(p.family or '?')})" for p in info.pruned]
        marker = dict(color=STATE_COLORS["PRUNED"], symbol="x", size=7)
        traces.append(_points(info.pruned, "pruned (last epoch)", marker, hover))
    if info.best_so_far:
        line = dict(color=BEST_COLOR, shape="hv", width=2)
        xs, ys = [n for n, _ in info.best_so_far], [v for _, v in info.best_so_far]
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", name="best so far", line=line))
    if info.named:
        hover = [f"trial {p.number}: {plot_text(p.point)} ({p.state.lower()})" for p in info.named]
        marker = dict(color=POINT_COLOR, symbol="star", size=15, line=dict(color="black", width=1))
        star = _points(info.named, "named points", marker, hover, mode="markers+text")
        star.update(text=[plot_text(p.point) for p in info.named], textposition="top center")
        traces.append(star)
    return traces


def _points(points: list, name: str, marker: dict, hover: list[str], mode: str = "markers") -> go.Scatter:
    """Trials as markers at (number, value)."""
    xs, ys = [p.number for p in points], [p.value for p in points]
    return go.Scatter(x=xs, y=ys, mode=mode, name=name, marker=marker, hovertext=hover)


def plot_history(study: Study) -> go.Figure:
    """Every finished trial's value vs trial number, best-so-far line, named points starred."""
    return _draw_history(_history_info(study))


class Curve(NamedTuple):
    number: int
    state: str
    epochs: list[int]
    values: list[float]
    family: str | None
    point: str | None
    stop_reason: str | None
    is_best: bool


class CurvesInfo(NamedTuple):
    """One validation-accuracy curve per trial that reported at least one epoch."""

    curves: list[Curve]
    objective: str
    note: str | None


def _curves_info(study: Study) -> CurvesInfo:
    best = best_trial(study)
    curves = []
    for trial in trials(study):
        epochs, values = curve_of(trial)
        if not epochs:
            continue
        reason = trial.user_attrs.get(TrialKey.STOP_REASON)
        curves.append(
            Curve(
                trial.number,
                trial.state.name,
                epochs,
                values,
                family_of(trial),
                point_of(trial),
                str(reason) if reason is not None else None,
                best is not None and trial.number == best.number,
            )
        )
    note = None if curves else "No trial has reported a validation accuracy yet."
    return CurvesInfo(curves, objective_names(study)[0], note)


_CURVE_STYLE = {
    "COMPLETE": dict(color=STATE_COLORS["COMPLETE"], width=1.5, dash="solid"),
    "PRUNED": dict(color=STATE_COLORS["PRUNED"], width=1, dash="dash"),
    "FAIL": dict(color=STATE_COLORS["FAIL"], width=1, dash="dot"),
    "RUNNING": dict(color=STATE_COLORS["RUNNING"], width=2, dash="solid"),
    "WAITING": dict(color=STATE_COLORS["WAITING"], width=1, dash="dot"),
}


def _curve_label(curve: Curve) -> str:
    """Figure text naming the curve's trial; family, point and stop reason are recorded strings."""
    label = f"trial {curve.number} ({curve.state.lower()}"
    label += f", {plot_text(curve.family)}" if curve.family else ""
    label += f", {plot_text(curve.point)}" if curve.point else ""
    return label + (f", stopped: {plot_text(curve.stop_reason)})" if curve.stop_reason else ")")


def _draw_curves(info: CurvesInfo) -> go.Figure:
    """One trace per group (pruned, failed, complete, ... best), curves split by gaps.

    Grouping keeps the figure fast for studies with thousands of trials; hover text
    still names each trial and epoch.
    """
    title = "Learning curves (validation accuracy per epoch)"
    if not info.curves:
        return note_figure(title, info.note or "No curves yet.")
    groups: dict[str, list[Curve]] = {}
    for curve in info.curves:
        groups.setdefault("best trial" if curve.is_best else curve.state.lower(), []).append(curve)
    # Pruned first so complete curves are drawn on top of the grey ones, best last.
    order = ["pruned", "fail", "waiting", "complete", "running", "best trial"]
    fig = go.Figure()
    for group in sorted(groups, key=lambda g: order.index(g) if g in order else 0):
        fig.add_trace(_group_trace(group, sorted(groups[group], key=lambda c: c.number)))
    fig.update_layout(
        title=dict(text=title),
        xaxis_title="epoch",
        yaxis_title=plot_text(info.objective),
        template="plotly_white",
        height=480,
        legend=dict(orientation="h", y=-0.2),
        hovermode="closest",
    )
    fig.update_xaxes(dtick=1 if max(max(c.epochs) for c in info.curves) <= 20 else None)
    return fig


def _group_trace(group: str, curves: list[Curve]) -> go.Scatter:
    """One group's curves as one trace, broken between curves; each curve's last point marked."""
    line = dict(_CURVE_STYLE.get(curves[0].state, _CURVE_STYLE["COMPLETE"]))
    if group == "best trial":
        line.update(color=BEST_COLOR, width=3.5)
    xs: list[int | None] = []
    ys: list[float | None] = []
    hover: list[str] = []
    sizes: list[int] = []
    symbols: list[str] = []
    for curve in curves:
        label = _curve_label(curve)
        xs += [*curve.epochs, None]
        ys += [*curve.values, None]
        hover += [f"{label}<br>epoch {e}: {v:.4f}" for e, v in zip(curve.epochs, curve.values)] + [""]
        sizes += [3] * (len(curve.epochs) - 1) + [8, 0]
        symbols += ["circle"] * (len(curve.epochs) - 1) + ["x" if curve.state == "PRUNED" else "circle"] * 2
    marker = dict(size=sizes, symbol=symbols, color=line["color"])
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines+markers",
        name=f"{group} ({len(curves)})",
        line=line,
        marker=marker,
        hovertext=hover,
        hoverinfo="text",
        opacity=0.6 if group == "pruned" else 1.0,
        connectgaps=False,
    )


def plot_learning_curves(study: Study) -> go.Figure:
    """Validation accuracy per epoch for every trial; pruned dashed grey, failed dotted red."""
    return _draw_curves(_curves_info(study))


class TimelineBar(NamedTuple):
    number: int
    state: str
    start: dt.datetime
    end: dt.datetime
    lane: str
    value: float | None
    family: str | None
    stale: bool = False


class TimelineInfo(NamedTuple):
    """Start and end of every started trial; running ones end at ``now``."""

    bars: list[TimelineBar]
    lane_kind: str
    max_parallel: int
    note: str | None


def _timeline_info(study: Study, now: dt.datetime | None = None) -> TimelineInfo:
    bars = []
    started = [t for t in trials(study) if t.datetime_start is not None]
    use_workers = any(t.user_attrs.get(TrialKey.WORKER) for t in started)
    finished = [t for t in started if t.datetime_complete is not None]
    last_activity = max((t.datetime_complete or t.datetime_start for t in started), default=None)
    longest = max(((t.datetime_complete - t.datetime_start) for t in finished), default=dt.timedelta(0))
    for trial in started:
        end = trial.datetime_complete
        stale = False
        if end is None:
            if trial.state != TrialState.RUNNING:
                continue
            end, stale = _running_end(
                trial.datetime_start, now or _now_like(trial.datetime_start), last_activity, longest
            )
        if end < trial.datetime_start:
            continue
        if use_workers:
            lane = str(trial.user_attrs.get(TrialKey.WORKER) or "unknown worker")
        else:
            lane = f"trial {trial.number}"
        bars.append(
            TimelineBar(
                trial.number,
                trial.state.name,
                trial.datetime_start,
                end,
                lane,
                primary_value(trial) if trial.values else None,
                family_of(trial),
                stale,
            )
        )
    bars.sort(key=lambda b: (b.start, b.number))
    note = None if bars else "No trial has started yet."
    if any(b.stale for b in bars):
        note = (
            "Some RUNNING trials have not changed for a long time while nothing else happened: their "
            "worker probably died. They are drawn up to the study's last activity."
        )
    return TimelineInfo(bars, "worker" if use_workers else "trial", _max_overlap(bars), note)


def _now_like(reference: dt.datetime) -> dt.datetime:
    """Now, naive or aware to match Optuna's timestamps (it stores naive local time)."""
    return dt.datetime.now(reference.tzinfo) if reference.tzinfo else dt.datetime.now()


def _running_end(
    start: dt.datetime, now: dt.datetime, last_activity: dt.datetime | None, longest: dt.timedelta
) -> tuple[dt.datetime, bool]:
    """Where a RUNNING trial's bar ends: now, unless the whole study went quiet long ago.

    A worker killed without cleanup leaves its trial RUNNING forever; drawing it up
    to "now" would squash months of timeline, so such (stale) bars stop at the
    study's last activity instead.
    """
    quiet = now - (last_activity or start)
    if quiet > max(3 * longest, dt.timedelta(hours=1)):
        # At least a sliver, so the stale trial stays visible and hoverable.
        sliver = max(longest / 20, dt.timedelta(seconds=1))
        return max(start + sliver, last_activity or start), True
    return now, False


def _max_overlap(bars: list[TimelineBar]) -> int:
    """Most trials running at the same moment (how parallel the workers really were)."""
    events = sorted([(b.start, 1) for b in bars] + [(b.end, -1) for b in bars], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def _draw_timeline(info: TimelineInfo) -> go.Figure:
    title = "Timeline of trials"
    if not info.bars:
        return note_figure(title, info.note or "No trial has started yet.")
    fig = go.Figure()
    for state in STATE_COLORS:
        bars = [b for b in info.bars if b.state == state]
        if not bars:
            continue
        fig.add_trace(
            go.Bar(
                name=state.lower(),
                orientation="h",
                y=[plot_text(b.lane) for b in bars],
                base=[b.start.isoformat() for b in bars],
                x=[(b.end - b.start).total_seconds() * 1000.0 for b in bars],
                marker=dict(color=STATE_COLORS[state], line=dict(color="white", width=0.5)),
                hovertext=[
                    f"trial {b.number} ({b.state.lower()}{', ' + plot_text(b.family) if b.family else ''})<br>"
                    f"{b.start:%H:%M:%S} – {b.end:%H:%M:%S} ({fmt_seconds((b.end - b.start).total_seconds())})"
                    f"<br>value {fmt_value(b.value)}" + ("<br>stale: no sign of life" if b.stale else "")
                    for b in bars
                ],
                hoverinfo="text",
            )
        )
    lanes = [plot_text(lane) for lane in sorted({b.lane for b in info.bars}, key=_lane_key)]  # as the bars' y
    fig.update_layout(
        title=dict(text=f"{title} — up to {info.max_parallel} at once"),
        barmode="overlay",
        template="plotly_white",
        xaxis=dict(type="date", title="time"),
        yaxis=dict(title=info.lane_kind, categoryorder="array", categoryarray=lanes[::-1]),
        height=max(260, min(900, 120 + 22 * len(lanes))),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def _lane_key(lane: str) -> tuple[str, int]:
    head, _, tail = lane.rpartition(" ")
    return (head, int(tail)) if tail.isdigit() else (lane, 0)


def plot_timeline(study: Study) -> go.Figure:
    """Start/end of each trial per worker (or per trial), coloured by state."""
    return _draw_timeline(_timeline_info(study))
