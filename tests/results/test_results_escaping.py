"""User strings are inert in the dashboard: no markup in figures, no way out of a figure's script.

Plotly renders a subset of HTML inside figure text (links, bold, styled spans) and decodes
entities; sign names, study, parameter and point names come from the user and must show as
the literal characters. The figure JSON sits in a ``<script>`` element, where ``</script>`` or
``<!--`` inside data would end or derail it. Each check here reads the decoded figure JSON,
which is what plotly.js renders, and the raw page, which is what the browser parses.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from plotly.utils import PlotlyJSONEncoder

sys.path.insert(0, str(Path(__file__).parent))
import results_fakes as fk

from results import figures, write_dashboard, write_data_report
from results.runfiles import load_run_files
from search.schema import StudyKey, TrialKey

PAYLOADS = (
    '<a href="https://example.invalid/x">link</a>',
    "<b>bold</b>",
    '<span style="font-size:80px">big</span>',
    "</script><script>alert(1)</script>",
    "<!--<script>",
)
EVIL = " ".join(PAYLOADS)
#: What a payload looks like when it is live markup (in figure text) or live HTML (in the page).
LIVE = ('<a href="https://example.invalid', "<b>bold</b>", "<span style=", "</script><script>alert", "<!--")

SIGN = "Stop " + EVIL
STUDY = "study " + EVIL
PARAM = "units " + EVIL
CHOICE = "choice " + EVIL
POINT = "point " + EVIL
DATA_DIR = "/data/" + EVIL
COMMAND = "run_search.py search --name " + EVIL
WORKER = "host " + EVIL


def plotly_escaped(text: str) -> str:
    """The inert form plotly shows literally: ``"`` as ``&#34;`` (plotly.js decodes no ``&quot;``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")


def evil_study() -> optuna.Study:
    """A study whose name, data folder, command, user-space parameter, choice, point and worker are payloads."""
    study = fk.new_study(name=STUDY, space="mine", **{StudyKey.DATA_DIR: DATA_DIR, StudyKey.COMMAND: COMMAND})
    dists = {PARAM: IntDistribution(8, 64), "activation": CategoricalDistribution(["relu", CHOICE])}
    for i in range(8):
        params = {PARAM: 8 + 7 * i, "activation": CHOICE if i % 2 else "relu"}
        attrs: dict[str, Any] = {TrialKey.WORKER: WORKER}
        if i == 0:
            attrs[TrialKey.POINT] = POINT
        fk.add_trial(study, curve=[0.5, 0.6 + 0.04 * i - 0.05 * (i % 2)], params=params, dists=dists, attrs=attrs)
    return study


def evil_names() -> list[str]:
    """The fake class names with one sign name (from a data folder's signnames.csv) a payload."""
    names = list(fk.CLASS_NAMES)
    names[14] = SIGN  # the worst class of the fake test report, and misclassified as 17
    return names


def plain_to_json(fig: go.Figure, **_: Any) -> str:
    """Figure JSON without plotly.io's own ``<`` ``>`` ``/`` escaping: what the page gets from a plain encoder."""
    return json.dumps(fig.to_plotly_json(), cls=PlotlyJSONEncoder)


def strings(obj: Any) -> Iterator[str]:
    """Every string in a figure's JSON, plotly's own template left out."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key != "template":
                yield from strings(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from strings(value)


def page_figures(text: str) -> dict[str, dict]:
    """Each embedded figure's JSON, decoded (it must parse), by figure id."""
    found = re.findall(r'data-figure="fig-([^"]+)".*?<script>\(function\(\)\{var f=(.*?);Plotly\.newPlot\(', text, re.S)
    return {name: json.loads(data) for name, data in found}


def check_inert(texts: list[str], where: str) -> None:
    """No payload is live markup, and nothing was escaped twice."""
    for text in texts:
        for live in (*LIVE, "&amp;lt;"):
            at = text.find(live)
            assert at < 0, f"{where}: {live!r} (live, or escaped twice) in {text[max(0, at - 80) : at + 120]!r}"


#: The figures' own markup; any other ``<`` in figure text is a user string's (a cut tick label's too).
OWN_MARKUP = re.compile(r"<br>|</?b>")


def check_figure_text(texts: list[str], where: str) -> None:
    """Figure text holds no markup but the figures' own ``<br>`` and ``<b>``, and no payload is live."""
    check_inert(texts, where)
    for text in texts:
        assert "<" not in OWN_MARKUP.sub("", text), f"{where}: markup in {text[:200]!r}"


def check_page(text: str) -> None:
    """The raw page: payloads only in escaped form, so neither the HTML nor a script element breaks."""
    check_inert([text], "page")
    assert html.escape(STUDY) in text  # the page title, through html.esc


@pytest.mark.parametrize("encoder", ["plotly", "plain-json"])
def test_dashboard_user_strings_are_inert(encoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if encoder == "plain-json":
        monkeypatch.setattr(pio, "to_json", plain_to_json)
    fk.write_run_files(tmp_path, study_name=STUDY, names=evil_names())
    text = write_dashboard(evil_study(), tmp_path).read_text(encoding="utf-8")
    check_page(text)
    assert 'class="section-error"' not in text
    figs = page_figures(text)
    assert {
        "summary",
        "history",
        "slices",
        "timeline",
        "class-examples",
        "class-distribution",
        "confusion",
        "per-class",
        "misclassified",
    } <= set(figs)
    for name, fig in figs.items():
        check_figure_text(list(strings(fig)), f"figure {name}")
    expected = {
        "summary": [STUDY, DATA_DIR, COMMAND],
        "history": [POINT],
        "slices": [PARAM, CHOICE],
        "timeline": [WORKER],
        **{
            name: [SIGN] for name in ("class-examples", "class-distribution", "confusion", "per-class", "misclassified")
        },
    }
    for name, shown in expected.items():
        joined = "\n".join(strings(figs[name]))
        for user_text in shown:
            assert plotly_escaped(user_text) in joined, f"figure {name} lacks the escaped {user_text[:12]!r}"


def test_every_figure_function_escapes(tmp_path: Path) -> None:
    """The notebook figures too, go.Table ones (top trials, final options, exported artifacts) included."""
    export = {"artifacts": [{"format": "tflite", "path": "model " + EVIL, "runtime": "runtime " + EVIL, "error": EVIL}]}
    fk.write_run_files(tmp_path, study_name=STUDY, names=evil_names(), final=True, export=export)
    report = json.loads((tmp_path / "test_report.json").read_text())
    report["final_model"]["name"] = report["final_options"][fk.CHOSEN_OPTION]["name"] = "option " + EVIL
    (tmp_path / "test_report.json").write_text(json.dumps(report))
    study, files = evil_study(), load_run_files(tmp_path)
    figs = {
        "summary": figures.plot_summary(study, tmp_path),
        "history": figures.plot_history(study),
        "curves": figures.plot_learning_curves(study),
        "importance": figures.plot_importance(study),
        "parallel": figures.plot_parallel(study),
        "slices": figures.plot_slices(study),
        "timeline": figures.plot_timeline(study),
        "top": figures.plot_top_trials(study),
        "confusion": figures.plot_confusion(files.test_report),
        "per-class": figures.plot_per_class(files.test_report),
        "misclassified": figures.plot_misclassified(files.misclassified, files.class_names),
        "final": figures.plot_final_summary(files.test_report, files.best_config),
        "options": figures.plot_final_options(files.test_report, files.best_config),
        "export": figures.plot_export_artifacts(files.export_report),
        "examples": figures.plot_class_examples(files.data_overview),
        "distribution": figures.plot_class_distribution(files.data_overview),
    }
    for name, fig in figs.items():
        check_figure_text(list(strings(fig.to_plotly_json())), f"plot {name}")
    cells = "\n".join(strings(figs["top"].to_plotly_json()))
    assert plotly_escaped(PARAM) in cells and plotly_escaped(CHOICE) in cells and plotly_escaped(POINT) in cells
    assert plotly_escaped("option " + EVIL) in "\n".join(strings(figs["options"].to_plotly_json()))
    assert plotly_escaped("runtime " + EVIL) in "\n".join(strings(figs["export"].to_plotly_json()))


def test_multi_objective_pareto_escapes() -> None:
    study = fk.new_study(["maximize", "minimize"], name=STUDY)
    for i in range(3):
        fk.add_trial(study, curve=[0.5 + 0.1 * i], attrs={TrialKey.POINT: POINT, TrialKey.PARAMS: 1000 * (3 - i)})
    texts = list(strings(figures.plot_pareto(study).to_plotly_json()))
    check_figure_text(texts, "pareto")
    assert any(plotly_escaped(POINT) in t for t in texts)


@pytest.mark.parametrize("encoder", ["plotly", "plain-json"])
def test_data_report_is_inert(encoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if encoder == "plain-json":
        monkeypatch.setattr(pio, "to_json", plain_to_json)
    out = write_data_report(fk.make_overview(names=evil_names()), tmp_path / "data.html", STUDY)
    text = out.read_text(encoding="utf-8")
    check_page(text)
    figs = page_figures(text)
    assert set(figs) == {"class-examples", "class-distribution"}
    for name, fig in figs.items():
        texts = list(strings(fig))
        check_figure_text(texts, name)
        assert any(plotly_escaped(SIGN) in t for t in texts)


@pytest.mark.parametrize("encoder", ["plotly", "plain-json"])
def test_figure_script_cannot_be_ended_by_data(encoder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the JSON encoder: no ``</`` or ``<!--`` in the script, and the data reads back unchanged."""
    from results.html import figure_html

    if encoder == "plain-json":
        monkeypatch.setattr(pio, "to_json", plain_to_json)
    block = figure_html(go.Figure(go.Bar(x=[EVIL], y=[1])), "x")
    script = block.split("<script>", 1)[1].rsplit("</script>", 1)[0]
    assert "</" not in script and "<!--" not in script
    (data,) = re.findall(r"var f=(.*?);Plotly\.newPlot\(", script)
    assert json.loads(data)["data"][0]["x"] == [EVIL]


def test_plot_text_and_notes_escape_once() -> None:
    from results._common import note_figure, plain_text, plot_text
    from results.html import figure_html

    assert plot_text('<a href="x">&amp;</a>') == "&lt;a href=&#34;x&#34;&gt;&amp;amp;&lt;/a&gt;"
    assert plot_text(EVIL) == plotly_escaped(EVIL) and plain_text(plot_text(EVIL)) == EVIL
    assert plain_text(plot_text("&lt; stays &lt;")) == "&lt; stays &lt;"
    fig = note_figure("title " + EVIL, "Importance failed: " + EVIL)
    check_figure_text([a.text for a in fig.layout.annotations] + [fig.layout.title.text], "note figure")
    # a note is shown as HTML text in the dashboard: escaped once, by html.esc
    assert figure_html(fig, "n") == f'<p class="note">{html.escape("Importance failed: " + EVIL)}</p>'
