"""Open generated dashboards in a real headless Chromium, offline, and check that they render.

The page under test is a copy of the dashboard with two test-only scripts added: one
at the top of <head> that records JavaScript errors (and console.error calls), one
at the end that, after load, writes a JSON report into the DOM: per figure div the
number of rendered plotly SVGs, the errors, the resources the page fetched, and
whether the top-trials table sorts. ``--dump-dom`` returns that DOM.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped without it.
Run only these with ``pytest -m browser``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import results_fakes as fk

from results import write_dashboard, write_data_report

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,2000",
    # No network at all: every host resolves to nothing and any proxy use hits a closed port.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost",
    "--proxy-server=http://127.0.0.1:9",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=15000",
    "--run-all-compositor-stages-before-draw",
]

COLLECT_ERRORS = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  window.__errors.push("JS error: " + (e.message || e.type) + " @" + (e.filename || "") + ":" + (e.lineno || 0));
}, true);
window.addEventListener("unhandledrejection", function (e) {
  window.__errors.push("Unhandled rejection " + e.reason); });
(function () { var orig = console.error; console.error = function () {
  window.__errors.push("console.error " + Array.prototype.join.call(arguments, " "));
  return orig.apply(console, arguments); }; })();
</script>"""

REPORT = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var figures = {};
  document.querySelectorAll("div.figure").forEach(function (div) {
    figures[div.getAttribute("data-figure")] = {
      svgs: div.querySelectorAll(".main-svg").length,
      containers: div.querySelectorAll(".plot-container").length,
      height: div.getBoundingClientRect().height
    };
  });
  var sorted = null, table = document.querySelector("table.sortable");
  if (table) {
    var head = table.tHead.rows[0].cells[0];
    head.click();
    var col = Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return parseFloat(r.cells[0].getAttribute("data-v")); });
    sorted = col.every(function (v, i) { return i === 0 || col[i - 1] <= v; })
      && head.getAttribute("data-dir") === "asc";
  }
  var resources = performance.getEntriesByType("resource").map(function (r) { return r.name; });
  var pre = document.createElement("pre");
  pre.id = "__results_report";
  pre.textContent = JSON.stringify({figures: figures, errors: window.__errors, resources: resources,
                                    sorted: sorted, plotly: typeof Plotly !== "undefined" ? Plotly.version : null});
  document.body.appendChild(pre);
}, 300); });
</script>"""


def _chromium_version() -> str:
    done = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def chromium() -> str:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install it with `apt-get update && apt-get install -y chromium` "
            "(Debian) or set CHROMIUM=/path/to/chromium to run the browser test"
        )
    return _chromium_version()


def _open(page: Path, tmp_path: Path) -> tuple[dict, str]:
    """Load a test copy of ``page`` headless; return the in-page report and Chromium's log."""
    text = page.read_text(encoding="utf-8")
    assert text.count("<head>") == 1 and text.count("</body>") == 1
    probe = page.with_name("probe-" + page.name)
    probe.write_text(
        text.replace("<head>", "<head>" + COLLECT_ERRORS, 1).replace("</body>", REPORT + "</body>", 1), encoding="utf-8"
    )
    profile = tmp_path / f"profile-{page.stem}"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", probe.resolve().as_uri()]
    env = {**os.environ, "HOME": str(tmp_path)}  # no writes into the real home
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    log = done.stderr
    match = re.search(r'<pre id="__results_report">(.*?)</pre>', done.stdout, re.S)
    assert match, f"no report in the dumped DOM (exit {done.returncode}); Chromium log tail:\n{log[-3000:]}"
    import html

    return json.loads(html.unescape(match.group(1))), log


def _check(report: dict, log: str, expected: list[str]) -> None:
    assert report["plotly"], "plotly.js did not load"
    assert report["errors"] == [], report["errors"]
    console_errors = [line for line in log.splitlines() if "Uncaught" in line or ":ERROR:CONSOLE" in line]
    assert console_errors == [], console_errors
    external = [r for r in report["resources"] if not r.startswith(("data:", "file:", "blob:"))]
    assert external == [], f"the page fetched {external}"
    assert sorted(report["figures"]) == sorted(expected)
    empty = {
        name: f for name, f in report["figures"].items() if f["svgs"] < 1 or f["containers"] < 1 or f["height"] < 50
    }
    assert empty == {}, f"figures that did not render: {empty}"


def _expected_figures(page: Path) -> list[str]:
    return re.findall(r'<div class="figure" data-figure="([^"]+)"', page.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", ["single", "multi", "empty"])
def test_dashboard_renders_offline_without_js_errors(case: str, chromium: str, tmp_path: Path) -> None:
    if case == "empty":
        study = fk.new_study()
    else:
        study = fk.full_study(multi=case == "multi", name=case)
        fk.write_run_files(tmp_path, study_name=case)
    page = write_dashboard(study, tmp_path)
    expected = _expected_figures(page)
    assert len(expected) >= (1 if case == "empty" else 12)
    report, log = _open(page, tmp_path)
    _check(report, log, expected)
    if case != "empty":
        assert report["sorted"] is True, "the top-trials table did not sort"
    if case == "multi":
        assert "fig-pareto" in report["figures"]


def test_data_report_renders(chromium: str, tmp_path: Path) -> None:
    page = write_data_report(fk.make_overview(missing=(2,)), tmp_path / "data.html", "GTSRB data check")
    report, log = _open(page, tmp_path)
    _check(report, log, ["fig-class-examples", "fig-class-distribution"])
