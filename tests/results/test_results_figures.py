"""The data behind each results figure, on hand-built studies (no training, no browser)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import optuna
import plotly.graph_objects as go
import pytest
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))
import results_fakes as fk

from results import fig_data, fig_model, fig_params, fig_pareto, fig_summary, fig_trials, figures
from results._common import NOTE_META
from results.runfiles import load_run_files
from search.schema import best_trial

C, P, F, R, W = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING


def _cnn(rng_value: float = 0.3) -> tuple[dict, dict]:
    params = {
        "family": "cnn",
        "cnn/conv_blocks": 2,
        "cnn/filters_0": 32,
        "cnn/dropout": rng_value,
        "learning_rate": 1e-3,
        "batch_size": 64,
        "optimizer": "adam",
        "augment": True,
    }
    family = optuna.distributions.CategoricalDistribution(["cnn", "lenet"])
    return params, {**fk.CNN_DISTS, **fk.COMMON_DISTS, "family": family}


def _lenet(units: int = 120) -> tuple[dict, dict]:
    params = {
        "family": "lenet",
        "lenet/padding": "same",
        "lenet/dense_units": units,
        "learning_rate": 3e-3,
        "batch_size": 32,
        "optimizer": "sgd",
        "augment": False,
    }
    family = optuna.distributions.CategoricalDistribution(["cnn", "lenet"])
    return params, {**fk.LENET_DISTS, **fk.COMMON_DISTS, "family": family}


def _by_state(info: fig_trials.CurvesInfo, state: str) -> list[fig_trials.Curve]:
    return [c for c in info.curves if c.state == state]


@pytest.fixture(scope="module")
def full() -> optuna.Study:
    return fk.full_study()


@pytest.fixture(scope="module")
def multi() -> optuna.Study:
    return fk.full_study(multi=True, name="multi")


def _all_plots(study: optuna.Study, run_dir: Path | None = None) -> list[go.Figure]:
    files = load_run_files(run_dir)
    return [
        figures.plot_summary(study, run_dir),
        figures.plot_history(study),
        figures.plot_learning_curves(study),
        figures.plot_importance(study),
        figures.plot_parallel(study),
        figures.plot_slices(study),
        figures.plot_timeline(study),
        figures.plot_pareto(study),
        figures.plot_top_trials(study),
        figures.plot_confusion(files.test_report),
        figures.plot_per_class(files.test_report),
        figures.plot_misclassified(files.misclassified, files.class_names),
        figures.plot_reliability(files.test_report),
        figures.plot_final_summary(files.test_report, files.best_config),
        figures.plot_final_options(files.test_report, files.best_config),
        figures.plot_export_artifacts(files.export_report),
        figures.plot_class_examples(files.data_overview),
        figures.plot_class_distribution(files.data_overview),
    ]


# --- degenerate studies: every figure still builds ---------------------------------------


def test_empty_study_every_figure_is_a_note() -> None:
    study = fk.new_study()
    figs = _all_plots(study)
    assert all(isinstance(f, go.Figure) for f in figs)
    assert all(f.layout.meta == NOTE_META for f in figs[1:]), "only the summary draws something"
    assert fig_trials._history_info(study).note == "No trial has finished yet."
    assert fig_trials._curves_info(study).curves == []
    assert fig_trials._timeline_info(study).bars == []
    assert fig_params._importance_info(study).importances == {}
    info = fig_summary._summary_info(study)
    assert info.n_trials == 0 and info.best_value is None
    assert any("no trials" in n for n in info.notes)


def test_one_trial_study() -> None:
    study = fk.new_study(space="cnn")
    params, dists = _cnn()
    fk.add_trial(study, C, curve=[0.5, 0.8, 0.9], params=params, dists=dists, attrs={"point": "tutorial"})
    assert fig_trials._history_info(study).best_so_far == [(0, 0.9)]
    imp = fig_params._importance_info(study)
    assert imp.importances == {} and "at least 2" in imp.note
    par = fig_params._parallel_info(study)
    assert par.axes == [] and par.note
    slices = fig_params._slices_info(study)
    assert {s.param for s in slices.slices} <= set(params) and all(len(s.xs) == 1 for s in slices.slices)
    summary = fig_summary._summary_info(study)
    assert summary.best_value == pytest.approx(0.9) and summary.best_trial == 0
    for fig in _all_plots(study):
        assert isinstance(fig, go.Figure)


def test_all_pruned_study() -> None:
    study = fk.new_study()
    for units in (80, 100, 120):
        params, dists = _lenet(units)
        fk.add_trial(study, P, curve=[0.3, 0.4], params=params, dists=dists)
    history = fig_trials._history_info(study)
    assert history.complete == [] and len(history.pruned) == 3 and history.best_so_far == []
    assert "No trial has completed" in history.note
    curves = fig_trials._curves_info(study)
    assert len(_by_state(curves, "PRUNED")) == 3 and not any(c.is_best for c in curves.curves)
    assert fig_params._importance_info(study).importances == {}
    assert fig_summary._summary_info(study).best_value is None
    assert fig_trials._draw_history(history).layout.meta != NOTE_META  # pruned points are drawn
    for fig in _all_plots(study):
        assert isinstance(fig, go.Figure)


def test_failed_trials_are_counted_not_ranked() -> None:
    study = fk.new_study()
    params, dists = _cnn()
    fk.add_trial(study, F, curve=[0.2], params=params, dists=dists)
    fk.add_trial(study, F, curve=[], params=params, dists=dists, attrs={"stop_reason": "nan"})
    history = fig_trials._history_info(study)
    assert history.n_failed == 2 and "failed" in history.note
    curves = fig_trials._curves_info(study)
    assert [c.state for c in curves.curves] == ["FAIL"]  # the one with an epoch
    assert fig_summary._summary_info(study).state_counts["FAIL"] == 2
    assert len(fig_trials._timeline_info(study).bars) == 2
    for fig in _all_plots(study):
        assert isinstance(fig, go.Figure)


# --- history, curves, timeline --------------------------------------------------------------


def test_history_highlights_named_points_and_tracks_best(full: optuna.Study) -> None:
    info = fig_trials._history_info(full)
    assert [(p.number, p.point) for p in info.named] == [(0, "cnn_tutorial"), (1, "lenet_tutorial")]
    complete = {t.number: t.value for t in full.trials if t.state == C}
    assert {p.number for p in info.complete} == set(complete)
    assert {p.number for p in info.pruned} == {t.number for t in full.trials if t.state == P}
    best = [b for _, b in info.best_so_far]
    assert best == sorted(best) and best[-1] == pytest.approx(max(complete.values()))
    assert info.n_failed == 1
    fig = fig_trials._draw_history(info)
    named = [t for t in fig.data if t.name == "named points"]
    assert named and list(named[0].text) == ["cnn_tutorial", "lenet_tutorial"]


def test_learning_curves_separate_pruned_from_complete(full: optuna.Study) -> None:
    info = fig_trials._curves_info(full)
    states = {t.number: t.state.name for t in full.trials}
    assert all(states[c.number] == c.state for c in info.curves)
    pruned, complete = _by_state(info, "PRUNED"), _by_state(info, "COMPLETE")
    assert pruned and complete and len(_by_state(info, "FAIL")) == 1 and len(_by_state(info, "RUNNING")) == 1
    assert all(len(c.epochs) == 3 for c in pruned) and all(len(c.epochs) == 10 for c in complete)
    assert [c.number for c in info.curves if c.is_best] == [best_trial(full).number]
    fig = fig_trials._draw_curves(info)
    dashes = {t.name.split(" (")[0]: t.line.dash for t in fig.data}
    assert dashes["pruned"] == "dash" and dashes["complete"] == "solid" and dashes["fail"] == "dot"
    pruned_trace = next(t for t in fig.data if t.name.startswith("pruned"))
    assert pruned_trace.name == f"pruned ({len(pruned)})" and list(pruned_trace.marker.symbol).count("x") >= len(pruned)


def test_curve_falls_back_to_val_curve_attr() -> None:
    study = fk.new_study()
    fk.add_trial(study, C, curve=[], values=[0.7], attrs={"val_curve": [0.5, float("nan"), 0.7]})
    (curve,) = fig_trials._curves_info(study).curves
    assert curve.epochs == [1, 3] and curve.values == [0.5, 0.7]


def test_timeline_one_row_per_finished_trial(full: optuna.Study) -> None:
    info = fig_trials._timeline_info(full)
    finished = [t for t in full.trials if t.state in (C, P, F)]
    rows = [b for b in info.bars if b.state != "RUNNING"]
    assert sorted(b.number for b in rows) == sorted(t.number for t in finished)
    assert all(b.start < b.end for b in rows)
    assert info.lane_kind == "worker" and {b.lane for b in info.bars} == {"node0:100", "node0:101", "node1:102"}
    assert info.max_parallel == 3
    (running,) = [b for b in info.bars if b.state == "RUNNING"]
    assert running.stale  # the fake study ran in 2024: its RUNNING trial is a dead worker's
    fresh = fig_trials._timeline_info(full, now=running.start + dt.timedelta(seconds=30))
    assert not [b for b in fresh.bars if b.state == "RUNNING"][0].stale


def test_timeline_without_workers_uses_trial_lanes() -> None:
    study = fk.new_study()
    fk.add_trial(study, C, curve=[0.5])
    fk.add_trial(study, P, curve=[0.2])
    info = fig_trials._timeline_info(study)
    assert info.lane_kind == "trial" and [b.lane for b in info.bars] == ["trial 0", "trial 1"]


# --- hyperparameters, conditional params -----------------------------------------------------


def test_conditional_params_never_crash(full: optuna.Study) -> None:
    imp = fig_params._importance_info(full)
    assert imp.note is None and sum(imp.importances.values()) == pytest.approx(1.0)
    assert "cnn/filters_0" in imp.importances and "lenet/padding" in imp.importances
    par = fig_params._parallel_info(full, max_params=20)
    by_name = {a.name: a for a in par.axes}
    n_lenet = sum(1 for t in full.trials if t.state == C and t.params.get("family") == "lenet")
    assert by_name["cnn/filters_0"].missing == n_lenet
    assert by_name["family"].kind == "categorical" and by_name["learning_rate"].kind == "log"
    assert par.axes[-1].kind == "objective"
    assert all(len(a.positions) == len(par.numbers) for a in par.axes)
    assert all(p is None or 0.0 <= p <= 1.0 for a in par.axes for p in a.positions)
    slices = fig_params._slices_info(full, max_params=20)
    by_param = {s.param: s for s in slices.slices}
    assert by_param["lenet/padding"].missing == len(par.numbers) - n_lenet
    assert set(by_param["lenet/padding"].xs) <= {"valid", "same"}
    assert by_param["augment"].categories == ["True", "False"]
    for fig in (fig_params._draw_parallel(par), fig_params._draw_slices(slices), fig_params._draw_importance(imp)):
        assert fig.layout.meta != NOTE_META


def test_parallel_and_slices_follow_requested_order(full: optuna.Study) -> None:
    par = fig_params._parallel_info(full, params=["batch_size", "not-a-param", "family"])
    assert [a.name for a in par.axes] == ["batch_size", "family", "val_accuracy"]
    slices = fig_params._slices_info(full, params=["learning_rate"])
    assert [s.param for s in slices.slices] == ["learning_rate"] and slices.slices[0].kind == "log"


def test_importance_with_identical_trials_is_a_note() -> None:
    study = fk.new_study()
    params, dists = _cnn()
    for _ in range(3):
        fk.add_trial(study, C, curve=[0.9], params=params, dists=dists)
    info = fig_params._importance_info(study)
    assert info.note and fig_params._draw_importance(info).layout.meta == NOTE_META


# --- multi-objective ------------------------------------------------------------------------------


def test_pareto_info(multi: optuna.Study) -> None:
    info = fig_pareto._pareto_info(multi)
    assert info.objectives == ["val_accuracy", "params"] and info.directions == ["maximize", "minimize"]
    complete = [t for t in multi.trials if t.state == C]
    assert len(info.points) == len(complete)
    front = info.front
    assert {p.number for p in front} == {t.number for t in multi.best_trials}
    for p in front:  # nobody beats a front point on both objectives
        assert not any(
            q.values[0] >= p.values[0] and q.values[1] <= p.values[1] and q.values != p.values for q in info.points
        )
    best = best_trial(multi)
    assert best.number in {p.number for p in front}
    assert best.values[0] == max(p.values[0] for p in front)
    assert fig_pareto._draw_pareto(info).layout.xaxis.type == "log"
    assert fig_params._importance_info(multi).importances  # uses val accuracy as target


def test_pareto_single_objective_is_a_note(full: optuna.Study) -> None:
    info = fig_pareto._pareto_info(full)
    assert info.points == [] and "Single-objective" in info.note


def test_top_trials_best_first_without_duplicate_family(full: optuna.Study, multi: optuna.Study) -> None:
    info = fig_summary._top_trials_info(full, n=5)
    values = [row[1] for row in info.rows]
    assert values == sorted(values, reverse=True) and len(info.rows) == 5
    assert info.columns.count("family") == 1 and "cnn/filters_0" in info.columns
    row = dict(zip(info.columns, info.rows[0]))
    assert row["trial"] == best_trial(full).number
    assert fig_summary._top_trials_info(multi).columns[1:3] == ["val_accuracy", "params"]


# --- summary and run-folder files -----------------------------------------------------------------


def test_summary_reads_run_files(full: optuna.Study, tmp_path: Path) -> None:
    fk.write_run_files(tmp_path)
    info = fig_summary._summary_info(full, load_run_files(tmp_path))
    assert info.study_name == "demo" and info.space == "all" and info.data_dir == "/data/gtsrb"
    assert info.state_counts == {"COMPLETE": 15, "PRUNED": 6, "FAIL": 1, "RUNNING": 1, "WAITING": 1}
    assert info.best_value == pytest.approx(best_trial(full).values[0])
    assert info.test_accuracy is not None and 0.9 < info.test_accuracy < 1
    seconds = [t.user_attrs["seconds"] for t in full.trials]
    assert info.total_seconds == pytest.approx(sum(seconds))
    assert info.mean_seconds == pytest.approx(sum(seconds) / len(seconds))
    by_state = {s: [t.user_attrs["seconds"] for t in full.trials if t.state.name == s] for s in ("PRUNED", "FAIL")}
    assert info.stopped == {
        "pruned": (6, pytest.approx(sum(by_state["PRUNED"]))),
        "dead": (1, pytest.approx(sum(by_state["FAIL"]))),
    }
    assert info.warnings == ["12 test images duplicate training images"]
    assert info.test_facts["duplicates_with_train"] == 12
    labels = [label for label, _ in fig_summary._summary_rows(info)]
    assert "Data warning" in labels and "Test accuracy (final model)" in labels and "Time on stopped trials" in labels


def test_trials_stopped_at_chance_count_as_dead_not_pruned() -> None:
    study = optuna.create_study(direction="maximize")
    for reason, state, seconds in (
        ("no_learning", TrialState.PRUNED, 7.0),
        ("pruned", TrialState.PRUNED, 5.0),
        ("nan", TrialState.FAIL, 2.0),
        ("max_epochs", TrialState.COMPLETE, 30.0),
    ):
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=0.5 if state == TrialState.COMPLETE else None,
                params={},
                distributions={},
                intermediate_values={1: 0.1} if state == TrialState.PRUNED else {},
                user_attrs={"stop_reason": reason, "seconds": seconds},
            )
        )
    assert fig_summary._summary_info(study).stopped == {"pruned": (1, 5.0), "dead": (2, 9.0)}


def test_broken_run_files_become_notes(full: optuna.Study, tmp_path: Path) -> None:
    (tmp_path / "test_report.json").write_text('{"test_accuracy": 0.9, "confus')  # half written
    (tmp_path / "misclassified.npz").write_bytes(b"PK\x03\x04 not really a zip")
    files = load_run_files(tmp_path)
    assert files.test_report is None and files.misclassified is None and len(files.problems) == 2
    info = fig_summary._summary_info(full, files)
    assert any("test_report.json" in n for n in info.notes)


def test_confusion_and_per_class_worst_first(tmp_path: Path) -> None:
    files = load_run_files(fk.write_run_files(tmp_path))
    confusion = fig_model._confusion_info(files.test_report)
    assert confusion.matrix.shape == (43, 43) and confusion.names[14] == "Stop"
    assert confusion.n_test == files.test_report["n_test"]
    per_class = fig_model._per_class_info(files.test_report)
    accuracies = [s.accuracy for s in per_class.scores]
    assert accuracies == sorted(accuracies) and per_class.scores[0].class_id == 14
    assert per_class.scores[0].name == "Stop" and len(per_class.scores) == 43
    fig = fig_model._draw_per_class(per_class)
    assert list(fig.data[0].x)[0].startswith("14 Stop")
    heat = fig_model._draw_confusion(confusion)
    assert heat.data[0].type == "heatmap" and "Stop" in heat.data[0].y[14]


def test_per_class_derived_from_matrix_when_missing() -> None:
    report = {"confusion_matrix": [[8, 2, 0], [0, 5, 0], [1, 0, 4]], "class_names": ["a", "b", "c"]}
    info = fig_model._per_class_info(report)
    assert [s.class_id for s in info.scores] == [0, 2, 1]
    assert [s.accuracy for s in info.scores] == pytest.approx([0.8, 0.8, 1.0])
    assert fig_model._confusion_info(report).accuracy == pytest.approx(17 / 20)


def test_per_class_shows_the_final_models_validation_accuracy_beside_test() -> None:
    report = {
        "confusion_matrix": [[8, 2, 0], [0, 5, 0], [1, 0, 4]],
        "class_names": ["a", "b", "c"],
        "final_model": {"val_class_accuracy": [0.5, None, 0.75]},
    }
    info = fig_model._per_class_info(report)
    assert info.validation == {0: 0.5, 2: 0.75}  # a class without validation images has no marker
    fig = fig_model._draw_per_class(info)
    assert [t.name for t in fig.data] == ["test", "validation"]
    assert list(fig.data[1].x) == [x for x in fig.data[0].x if not x.startswith("1 ")]
    assert list(fig.data[1].y) == [0.5, 0.75] and "validation" in fig.layout.title.text
    assert fig_model._per_class_info({k: v for k, v in report.items() if k != "final_model"}).validation is None


def test_missing_test_files_are_notes() -> None:
    assert fig_model._confusion_info(None).note and fig_model._per_class_info(None).note
    assert fig_model._misclassified_info(None).note
    assert fig_model._confusion_info({"confusion_matrix": [[1, 2]]}).note  # not square
    no_images = {"images": np.zeros((0, 32, 32, 3), np.uint8), "true": [], "pred": []}
    assert fig_model.plot_misclassified(no_images).layout.meta == NOTE_META


def test_misclassified_grid(tmp_path: Path) -> None:
    files = load_run_files(fk.write_run_files(tmp_path))
    info = fig_model._misclassified_info(files.misclassified, files.class_names)
    assert len(info.images) == 20 and info.labels[14] == "14 → 17"
    assert "Stop" in info.hovers[14] and "No entry" in info.hovers[14]
    fig = fig_model._draw_image_grid(info)
    assert fig.data[0].type == "image" and fig.data[0].source.startswith("data:image/png;base64,")
    assert [a.text for a in fig.layout.annotations][:2] == ["0 → 3", "1 → 4"]


# --- data section ----------------------------------------------------------------------------------


def test_data_section_info() -> None:
    overview = fk.make_overview(missing=(5,))
    examples = fig_data._examples_info(overview)
    assert len(examples.images) == 43 and examples.images[5] is None and examples.images[4] is not None
    assert examples.labels[14] == "14<br>Stop" and "5" in examples.note
    dist = fig_data._distribution_info(overview)
    assert list(dist.counts) == ["train", "valid", "test"] and dist.class_ids == list(range(43))
    assert dist.counts["train"] == overview["counts_train"].tolist() and dist.names[17] == "No entry"
    fig = fig_data._draw_distribution(dist)
    assert [t.type for t in fig.data] == ["bar"] * 3 and fig.layout.barmode == "group"
    no_test = fig_data._distribution_info(fk.make_overview(test=False))
    assert list(no_test.counts) == ["train", "valid"]


def test_data_section_grey_and_float_images() -> None:
    overview = {
        "examples": np.random.default_rng(0).random((3, 32, 32, 1)),
        "counts_train": np.array([5, 0, 7]),
        "counts_valid": np.array([1, 1, 1]),
    }
    info = fig_data._examples_info(overview)
    assert info.labels == ["0<br>class 0", "1<br>class 1", "2<br>class 2"] and info.note is None
    assert fig_data.plot_class_examples(overview).data[0].type == "image"
    assert "1" in fig_data._distribution_info(overview).note  # class 1 has no training images
    assert fig_data._examples_info(None).note and fig_data._distribution_info({}).note
