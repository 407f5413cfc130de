"""HTML building blocks: the page shell, figure embedding, a sortable table.

The page is self-contained: plotly.js is inlined once, every figure only carries its
JSON, and the table sorter is a few lines of inline JS. Nothing is fetched, so a
dashboard copied off a cluster opens offline. Pages are written with ``schema.write_text``
(private temporary file, fsync, rename), the same atomic write the search uses.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from ._common import NOTE_META, plain_text

log = logging.getLogger(__name__)

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1f3b57;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.85;font-size:13px}
nav{position:sticky;top:0;z-index:10;background:#fff;border-bottom:1px solid #ddd;padding:6px 24px;font-size:13px}
nav a{margin-right:14px;color:#1f3b57;text-decoration:none} nav a:hover{text-decoration:underline}
main{max-width:1280px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:18px 0;padding:6px 18px 14px}
section h2{font-size:18px;margin:12px 0 4px} p.explain{color:#555;font-size:13px;margin:0 0 8px;max-width:900px}
p.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;font-size:13px;margin:8px 0}
div.section-error{background:#fdecea;border-left:4px solid #d62728;padding:6px 10px;font-size:13px;margin:8px 0}
div.figure{margin:6px 0}
.js-plotly-plot image{image-rendering:pixelated}
table.sortable{border-collapse:collapse;font-size:12px;width:100%;display:block;overflow-x:auto}
table.sortable th{background:#e8eef7;cursor:pointer;position:sticky;top:0;white-space:nowrap;padding:4px 8px;
  text-align:left}
table.sortable th[data-dir=asc]::after{content:" \\25B2"} table.sortable th[data-dir=desc]::after{content:" \\25BC"}
table.sortable td{border-top:1px solid #eee;padding:3px 8px;white-space:nowrap}
table.sortable tr:hover td{background:#f3f7fc}
table.sortable tr.marked td{background:#e6f4ea;font-weight:600}
table.facts{border-collapse:collapse;font-size:13px;margin:6px 0 10px}
table.facts th{text-align:left;padding:3px 14px 3px 0;color:#333;white-space:nowrap;vertical-align:top}
table.facts td{padding:3px 0;border-top:1px solid #f0f0f0}
h3.block{font-size:15px;margin:14px 0 4px}
footer{color:#888;font-size:12px;text-align:center;padding:12px}
"""

SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("data-dir") !== "asc";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("data-dir"); });
      th.setAttribute("data-dir", asc ? "asc" : "desc");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


@dataclass
class Section:
    """One dashboard section: heading, why it is there, and its blocks of HTML."""

    anchor: str
    title: str
    explain: str
    blocks: list[str] = field(default_factory=list)


def esc(text: Any) -> str:
    """Plain text for HTML outside figures (text and attribute values); figure text uses ``plot_text``."""
    return html.escape(str(text), quote=True)


def note_html(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def is_note(fig: go.Figure) -> bool:
    """True for figures made by ``note_figure`` (nothing to draw, only a reason)."""
    return fig.layout.meta == NOTE_META


#: ``<`` and ``>`` as JSON escapes: inside JSON they occur only in strings, where ``\u003c`` reads back
#: as ``<``, and without them no ``</script>`` or ``<!--`` in the data can end or derail the script element.
_SCRIPT_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"))


def script_json(fig: go.Figure) -> str:
    """The figure's JSON, safe inside a ``<script>`` element whatever strings the figure holds.

    The installed plotly.io escapes ``<``, ``>`` and ``/`` in its JSON itself (both engines); escaping
    here again keeps the page safe without relying on one plotly release's encoder.
    """
    data = pio.to_json(fig, validate=False, pretty=False)
    for char, escape in _SCRIPT_ESCAPES:
        data = data.replace(char, escape)
    return data


def figure_html(fig: go.Figure, div_id: str) -> str:
    """The figure's div and JSON only; plotly.js itself is inlined once in the page head.

    Built by hand rather than with ``fig.to_html`` so the div gets the figure's own
    height (plotly's wrapper uses ``height:100%``, which collapses in a flowing page).
    """
    if is_note(fig):  # the note's figure text (``plot_text``) back to plain text, which note_html escapes
        texts = [plain_text(a.text) for a in fig.layout.annotations or () if a.text]
        return note_html(" ".join(texts))
    height = fig.layout.height or 450
    div_id = "fig-" + div_id  # never collide with section anchors
    data = script_json(fig)
    config = json.dumps({"displaylogo": False, "responsive": True})
    return (
        f'<div class="figure" data-figure="{esc(div_id)}">'
        f'<div id="{esc(div_id)}" class="plotly-graph-div" style="height:{int(height)}px;width:100%"></div>'
        f"<script>(function(){{var f={data};"
        f"Plotly.newPlot({json.dumps(div_id)},f.data,f.layout,{config});}})();</script>"
        "</div>"
    )


def guarded(label: str, build: Callable[[], str]) -> str:
    """Run one block builder; a bug in one figure costs that block, not the whole page."""
    try:
        return build()
    except Exception as exc:  # the dashboard must always be written
        log.exception("dashboard block %s failed", label)
        return (
            f'<div class="section-error">Could not draw {esc(label)}: {esc(exc.__class__.__name__)}: {esc(exc)}</div>'
        )


def sortable_table(
    columns: Sequence[str], rows: Sequence[Sequence[tuple[str, Any]]], marked: Sequence[bool] | None = None
) -> str:
    """An HTML table sorted by clicking a header; each cell is (shown text, sort key).

    Rows flagged in ``marked`` are highlighted (the chosen one among compared options).
    """
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f'<td data-v="{esc("" if key is None else key)}">{esc(text)}</td>' for text, key in row)
        mark = ' class="marked"' if marked is not None and i < len(marked) and marked[i] else ""
        body.append(f"<tr{mark}>{cells}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def facts_table(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column label / text table: plain HTML, so its text can be read, searched and copied."""
    body = "".join(f"<tr><th>{esc(label)}</th><td>{esc(text)}</td></tr>" for label, text in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def heading_html(text: str) -> str:
    """A small heading above one block of a section."""
    return f'<h3 class="block">{esc(text)}</h3>'


def page(title: str, subtitle: str, sections: Sequence[Section], footer: str = "") -> str:
    """The whole document: plotly.js once in the head, then a nav and the sections."""
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    parts = []
    for s in sections:
        parts.append(
            f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2><p class="explain">{esc(s.explain)}</p>'
            + "".join(s.blocks)
            + "</section>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f'<style>{CSS}</style>\n<script type="text/javascript">{get_plotlyjs()}</script>\n</head><body>'
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{nav}</nav><main>{''.join(parts)}</main>"
        f"<footer>{esc(footer)}</footer><script>{SORT_JS}</script></body></html>\n"
    )
