"""Small helpers shared by the figure modules: trial access, formatting, note figures.

Everything here reads a study through Optuna's public API only, so a study that
is still being written by a running search can be shown at any moment. Which keys a
trial or study carries, which trial is the best and how trials are ranked or counted
come from ``search.schema``, the contract with the search; nothing here redefines them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from search.schema import StudyKey, TrialKey, count_states, rankable

#: One colour per trial state, used by every figure so the legend reads the same everywhere.
STATE_COLORS: dict[str, str] = {
    "COMPLETE": "#1f77b4",
    "PRUNED": "#9e9e9e",
    "FAIL": "#d62728",
    "RUNNING": "#ff7f0e",
    "WAITING": "#bcbd22",
}
STATE_ORDER: tuple[str, ...] = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
POINT_COLOR = "#e377c2"
#: ``layout.meta`` of figures that only carry a note; the dashboard shows those as text.
NOTE_META = "results-note"
BEST_COLOR = "#2ca02c"


def trials(study: Study, *states: TrialState) -> list[FrozenTrial]:
    """Trials of the given states (all when none given), without deep copies: read only."""
    return study.get_trials(deepcopy=False, states=states or None)


def complete_trials(study: Study) -> list[FrozenTrial]:
    """COMPLETE trials whose first value is finite: the ones that can be ranked (``schema.rankable``)."""
    return rankable(trials(study, TrialState.COMPLETE))


def primary_value(trial: FrozenTrial) -> float | None:
    """First objective value (validation accuracy), or None when absent or not finite."""
    values = trial.values
    if not values:
        return None
    return finite(values[0])


def finite(value: Any) -> float | None:
    """``float(value)`` when it is a finite number, else None (NaN runs, junk attrs)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def is_multi_objective(study: Study) -> bool:
    """True for the (val accuracy, params) mode."""
    return len(study.directions) > 1


def maximizes(study: Study) -> bool:
    """Whether the first objective is maximised (validation accuracy normally is)."""
    return study.directions[0] == StudyDirection.MAXIMIZE


def objective_names(study: Study) -> list[str]:
    """Objective names from the study's objectives attr, padded to the number of directions."""
    raw = study.user_attrs.get(StudyKey.OBJECTIVES)
    names = [str(n) for n in raw] if isinstance(raw, (list, tuple)) else []
    defaults = ["val_accuracy", "params"] if len(study.directions) > 1 else ["val_accuracy"]
    while len(names) < len(study.directions):
        i = len(names)
        names.append(defaults[i] if i < len(defaults) else f"objective {i}")
    return names[: len(study.directions)]


def state_counts(study: Study) -> dict[str, int]:
    """Trial counts by state name (``schema.count_states``), zeros included, in ``STATE_ORDER``."""
    counts = {state.name: n for state, n in count_states(trials(study)).items()}
    return {name: counts.pop(name, 0) for name in STATE_ORDER} | counts


def family_of(trial: FrozenTrial) -> str | None:
    """Model family: the user attr, else the "family" param, else None."""
    family = trial.user_attrs.get(TrialKey.FAMILY, trial.params.get("family"))
    return str(family) if family is not None else None


def point_of(trial: FrozenTrial) -> str | None:
    """Name of the hand-written point this trial evaluated (e.g. "cnn_tutorial"), if any.

    Only named points (the stars of the history plot); where any configuration came from,
    local-search neighbours included, is ``schema.origin_of(trial.user_attrs)``.
    """
    point = trial.user_attrs.get(TrialKey.POINT)
    return str(point) if point not in (None, "") else None


def curve_of(trial: FrozenTrial) -> tuple[list[int], list[float]]:
    """Validation accuracy per epoch: intermediate values, else the ``TrialKey.VAL_CURVE`` attr."""
    steps: list[int] = []
    values: list[float] = []
    if trial.intermediate_values:
        for step in sorted(trial.intermediate_values):
            value = finite(trial.intermediate_values[step])
            if value is not None:
                steps.append(int(step))
                values.append(value)
        return steps, values
    curve = trial.user_attrs.get(TrialKey.VAL_CURVE)
    if isinstance(curve, (list, tuple)):
        for epoch, raw in enumerate(curve, start=1):
            value = finite(raw)
            if value is not None:
                steps.append(epoch)
                values.append(value)
    return steps, values


def fmt_value(value: Any, digits: int = 4) -> str:
    """Human text for a param or metric: floats trimmed, None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3g}"
        return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def fmt_seconds(seconds: float | None) -> str:
    """Seconds as "1h 02m", "3m 05s" or "12.3 s"."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_count(n: float | None) -> str:
    """Parameter counts as 1.23M / 45.6k."""
    if n is None:
        return "—"
    if abs(n) >= 1e6:
        return f"{n / 1e6:.2f}M"
    if abs(n) >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def param_kind(dist: BaseDistribution | None) -> str:
    """ "categorical", "log" or "numeric": how an axis for the param is drawn."""
    if isinstance(dist, CategoricalDistribution):
        return "categorical"
    if isinstance(dist, (FloatDistribution, IntDistribution)) and dist.log:
        return "log"
    return "numeric"


def param_distribution(trial_list: Iterable[FrozenTrial], name: str) -> BaseDistribution | None:
    """The distribution the param was sampled from in the latest trial that has it."""
    found = None
    for trial in trial_list:
        if name in trial.distributions:
            found = trial.distributions[name]
    return found


#: ``plot_text``'s replacements, ``&`` first. ``"`` becomes a numeric entity: plotly.js decodes
#: ``&amp; &lt; &gt;`` and numeric entities, but shows ``&quot;`` as it is.
_PLOT_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"))


def plot_text(text: Any) -> str:
    """``text`` for a figure (title, tick label, hover, cell, legend, annotation), shown as its literal characters.

    Plotly renders an HTML subset inside figure text (``<a href>``, ``<b>``, ``<br>``, ``<span style>``)
    and decodes entities, so a user string (sign name, study, parameter or point name, path) would
    otherwise turn into links or styling. Apply it to the user parts only, after ``short``, and put
    the figure's own markup (``<br>``, ``<b>``) around the result.
    """
    text = str(text)
    for char, entity in _PLOT_ESCAPES:
        text = text.replace(char, entity)
    return text


def plain_text(text: str) -> str:
    """The inverse of ``plot_text``: figure text back to what it shows, for HTML that ``html.esc`` escapes itself.

    Exact, because ``plot_text`` escapes every ``&``: any entity in its output is one it wrote.
    """
    return html.unescape(text)


def note_figure(title: str, note: str, height: int = 160) -> go.Figure:
    """An empty figure that only says why there is nothing to draw (keeps a section's place).

    ``title`` and ``note`` are plain text (a note may quote a user string or an error message).
    """
    fig = go.Figure()
    fig.add_annotation(
        text=plot_text(note),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font=dict(size=14, color="#555"),
    )
    fig.update_layout(
        title=dict(text=plot_text(title)),
        height=height,
        template="plotly_white",
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        margin=dict(l=20, r=20, t=50, b=20),
        meta=NOTE_META,
    )
    return fig


def short(text: str, limit: int = 22) -> str:
    """Cut long class names for tick labels; hover text keeps the full name. Plain text in and out:
    cut before ``plot_text``, which would otherwise count entities and could cut one in half."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
