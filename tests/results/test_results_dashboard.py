"""The HTML dashboard: self-contained, one plotly.js, every section present, atomic writes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import optuna
import pytest
from plotly.offline import get_plotlyjs

sys.path.insert(0, str(Path(__file__).parent))
import results_fakes as fk

from results import load_study, write_dashboard, write_data_report
from search import schema  # results writes its pages with schema.write_text

PLOTLY_HEAD = get_plotlyjs()[:300]


def check_self_contained(text: str) -> None:
    """No external scripts, styles or fonts; plotly.js embedded exactly once."""
    assert not re.search(r"<script[^>]+src\s*=", text, re.I), "no <script src=...>"
    assert not re.search(r"<link[^>]+href\s*=\s*[\"']?(https?:)?//", text, re.I), "no external <link>"
    for tag in re.findall(r"<script[^>]*>", text, re.I):
        assert "cdn.plot.ly" not in tag and "https://cdn" not in tag
    assert "@import" not in text.split("<script", 1)[0]
    assert text.count(PLOTLY_HEAD) == 1, "plotly.js bundle exactly once"
    assert 'class="section-error"' not in text, "a section failed to draw"


def figure_ids(text: str) -> list[str]:
    return re.findall(r'<div class="figure" data-figure="([^"]+)"', text)


@pytest.mark.parametrize("case", ["full", "multi", "empty", "one", "pruned", "failed", "no-files"])
def test_dashboard_on_tricky_studies(case: str, tmp_path: Path) -> None:
    if case == "full":
        study = fk.full_study()
    elif case == "multi":
        study = fk.full_study(multi=True, name="multi")
    elif case == "empty":
        study = fk.new_study()
    elif case == "one":
        study = fk.new_study(space="lenet")
        fk.add_trial(study, curve=[0.4, 0.6], attrs={"point": "tutorial"})
    elif case == "pruned":
        study = fk.new_study()
        for _ in range(3):
            fk.add_trial(study, optuna.trial.TrialState.PRUNED, curve=[0.2, 0.3])
    elif case == "failed":
        study = fk.new_study()
        fk.add_trial(study, optuna.trial.TrialState.FAIL, curve=[])
    else:
        study = fk.full_study(n=6)
    if case in ("full", "multi", "one"):
        fk.write_run_files(tmp_path, test=case != "one", study_name=study.study_name)
    out = write_dashboard(study, tmp_path)
    assert out == tmp_path / "dashboard.html"
    text = out.read_text(encoding="utf-8")
    check_self_contained(text)
    for anchor in ("summary", "history", "curves", "params", "timeline", "model", "trials", "data"):
        assert f'<section id="{anchor}">' in text
    assert ('<section id="pareto">' in text) == (case == "multi")
    ids = figure_ids(text)
    assert "fig-summary" in ids
    if case in ("full", "multi"):
        assert {
            "fig-history",
            "fig-learning-curves",
            "fig-importance",
            "fig-parallel",
            "fig-slices",
            "fig-timeline",
            "fig-confusion",
            "fig-per-class",
            "fig-misclassified",
            "fig-class-examples",
            "fig-class-distribution",
        } <= set(ids)
        assert 'class="sortable"' in text
    if case == "multi":
        assert "fig-pareto" in ids
    if case == "empty":
        assert ids == ["fig-summary"] and text.count('<p class="note">') >= 8
    assert not list(tmp_path.glob(".dashboard.html.*")), "temp file cleaned up"
    assert not list(tmp_path.glob(".tmp-*")), "temp file (schema.private_tmp) cleaned up"


def test_dashboard_custom_out_and_overwrite(tmp_path: Path) -> None:
    study = fk.full_study(n=5)
    out = tmp_path / "sub" / "report.html"
    assert write_dashboard(study, tmp_path / "missing-run-dir", out) == out
    first = out.read_text()
    fk.add_trial(study, curve=[0.99])
    write_dashboard(study, tmp_path / "missing-run-dir", out)
    second = out.read_text()
    assert " · 5 trials · " in first and " · 6 trials · " in second  # the page was written again, with the trial
    assert "section-error" not in second.split("</style>", 1)[1]


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "dashboard.html"
    target.write_text("old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(schema.os, "replace", boom)
    with pytest.raises(OSError):
        schema.write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["dashboard.html"]


def test_broken_figure_costs_one_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from results import fig_trials

    def broken(info: object) -> None:
        raise RuntimeError("bug in history")

    monkeypatch.setattr(fig_trials, "_draw_history", broken)
    text = write_dashboard(fk.full_study(n=5), tmp_path).read_text()
    assert text.count('<div class="section-error">') == 1 and "bug in history" in text
    assert "fig-learning-curves" in figure_ids(text)


def test_write_data_report(tmp_path: Path) -> None:
    out = write_data_report(fk.make_overview(missing=(3,)), tmp_path / "data.html", "GTSRB <check>")
    text = out.read_text()
    check_self_contained(text)
    assert figure_ids(text) == ["fig-class-examples", "fig-class-distribution"]
    assert "GTSRB &lt;check&gt;" in text and "No example for class 3" in text


def test_write_data_report_from_npz(tmp_path: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "data_overview.npz", **fk.make_overview(test=False))
    with np.load(tmp_path / "data_overview.npz") as npz:
        text = write_data_report(npz, tmp_path / "d.html", "t").read_text()
    assert "valid" in text and figure_ids(text) == ["fig-class-examples", "fig-class-distribution"]


def test_load_study_errors_name_study_and_storage(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    url = f"sqlite:///{db}"
    fk.full_study(n=3, storage=url, name="alpha")
    assert load_study("alpha", url).study_name == "alpha"
    assert load_study("alpha", str(tmp_path)).study_name == "alpha"  # run folder works too
    with pytest.raises(ValueError, match=r"'beta'.*study\.db.*alpha"):
        load_study("beta", url)
    missing = tmp_path / "nope.db"
    with pytest.raises(ValueError, match="nope.db"):
        load_study("alpha", f"sqlite:///{missing}")
    assert not missing.exists(), "a missing SQLite file must not be created"
    with pytest.raises(ValueError, match="nope.db"):
        load_study("alpha", str(missing))


def test_redacts_passwords() -> None:
    from results.storage import redact

    assert redact("postgresql://me:s3cret@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_dashboard_from_sqlite_while_running(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    fk.full_study(n=4, storage=url, name="live")
    study = load_study("live", url)
    text = write_dashboard(study, tmp_path).read_text()
    check_self_contained(text)
    assert "search running" in text


def test_snapshot_keeps_numbers_states_and_attrs() -> None:
    from results.storage import snapshot

    study = fk.full_study(n=7)
    copy = snapshot(study)
    assert copy.study_name == study.study_name and copy.user_attrs == study.user_attrs
    assert [(t.number, t.state, t.values, t.params, t.intermediate_values, t.datetime_start) for t in copy.trials] == [
        (t.number, t.state, t.values, t.params, t.intermediate_values, t.datetime_start) for t in study.trials
    ]
    fk.add_trial(study, curve=[0.9])
    assert len(copy.trials) == len(study.trials) - 1


def _objective(trial: optuna.Trial) -> float:
    """A cheap stand-in for training: conditional params, per-epoch reports, pruning, failures."""
    family = trial.suggest_categorical("family", ["cnn", "lenet"])
    if family == "cnn":
        blocks = trial.suggest_int("cnn/conv_blocks", 1, 3)
        quality = 0.9 + 0.02 * blocks - abs(trial.suggest_float("cnn/dropout", 0, 0.5) - 0.2)
    else:
        quality = 0.85 + 0.05 * (trial.suggest_categorical("lenet/padding", ["valid", "same"]) == "same")
    quality -= abs(trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True) - 1e-3) * 10
    trial.set_user_attr("family", family)
    trial.set_user_attr("params", 50_000 * (1 + trial.number % 7))
    if trial.number == 4:
        raise RuntimeError("simulated out-of-memory")
    for epoch in range(1, 6):
        trial.report(quality * (1 - 0.5**epoch), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return quality


def test_dashboard_on_optimized_study(tmp_path: Path) -> None:
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    study.optimize(_objective, n_trials=25, catch=(RuntimeError,))
    study.enqueue_trial({"family": "cnn", "cnn/conv_blocks": 2, "cnn/dropout": 0.2, "learning_rate": 1e-3})
    study.ask()  # a RUNNING trial, as while the search is going
    text = write_dashboard(study, tmp_path).read_text()
    check_self_contained(text)
    assert {"fig-importance", "fig-parallel", "fig-slices", "fig-learning-curves"} <= set(figure_ids(text))
