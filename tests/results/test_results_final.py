"""The final model in the dashboard: summary, compared options, exports and the reliability diagram.

New-style reports (a final stage that compared ensembles and TTA) and old ones (none of those keys)
must both render; ``export_report.json`` is optional and read tolerantly.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import results_fakes as fk
from test_results_dashboard import check_self_contained, figure_ids

from results import fig_final, fig_model, figures, write_dashboard
from results._common import NOTE_META
from results.runfiles import load_run_files
from search.schema import RunFile


@pytest.fixture(scope="module")
def study():  # type: ignore[no-untyped-def]
    return fk.full_study(n=8)


def _section(text: str, anchor: str) -> str:
    start = text.index(f'<section id="{anchor}">')
    return text[start : text.index("</section>", start)]


# --- reliability diagram -----------------------------------------------------------------------------


def test_reliability_bars_match_bins(tmp_path: Path) -> None:
    report = load_run_files(fk.write_run_files(tmp_path, final=True)).test_report
    info = fig_model._reliability_info(report)
    bins = report["reliability"]
    assert info.note is None and info.ece == pytest.approx(0.0123) and info.count == bins["count"]
    assert info.lower == bins["edges"][:-1] and info.upper == bins["edges"][1:]
    fig = figures.plot_reliability(report)
    bars = fig.data[0]
    full = [i for i, c in enumerate(bins["count"]) if c]
    assert bars.type == "bar" and len(bars.x) == len(full) == 7
    assert list(bars.x) == pytest.approx([(bins["edges"][i] + bins["edges"][i + 1]) / 2 for i in full])
    assert list(bars.y) == pytest.approx([bins["accuracy"][i] for i in full])
    assert list(bars.width) == pytest.approx([0.1] * 7)
    assert list(bars.customdata) == [bins["count"][i] for i in full]
    assert f"{bins['count'][-1]} images" in bars.hovertext[-1]
    diagonal = [t for t in fig.data if t.name == "perfectly calibrated"][0]
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    assert "ECE 0.0123" in fig.layout.title.text


@pytest.mark.parametrize(
    "report",
    [
        None,
        {"test_accuracy": 0.9},  # old-style: no reliability
        {"reliability": {"edges": [0, 0.5, 1], "confidence": [0.3], "accuracy": [0.2], "count": [3]}},  # too few bins
        {"reliability": {"edges": [0, 1], "confidence": [None], "accuracy": [None], "count": [0]}},  # nothing binned
        {"reliability": "junk"},
    ],
)
def test_reliability_without_usable_bins_is_a_note(report: dict | None) -> None:
    info = fig_model._reliability_info(report)
    assert info.note and fig_model.plot_reliability(report).layout.meta == NOTE_META


def test_reliability_ece_falls_back_to_report() -> None:
    report = {
        "ece": 0.05,
        "reliability": {"edges": [0, 0.5, 1], "confidence": [0.3, 0.8], "accuracy": [0.2, 0.9], "count": [3, 7]},
    }
    info = fig_model._reliability_info(report)
    assert info.ece == 0.05 and info.note is None


# --- summary, options, exports ----------------------------------------------------------------------


def test_final_summary_of_new_style_report(tmp_path: Path) -> None:
    files = load_run_files(fk.write_run_files(tmp_path, final=True))
    info = fig_final._final_summary_info(files.test_report, files.best_config)
    assert info.option is not None and info.option.name == "ensemble of 3" and info.option.members == [3, 7, 1]
    assert info.option.tta is False and info.option.temperature == pytest.approx(0.91)
    assert info.ci95 is not None and info.ci95[0] < info.test_accuracy < info.ci95[1]
    assert [m.trial_number for m in info.members] == [3, 7, 1] and info.final_data == "train"
    assert info.note is None
    rows = dict(fig_final._final_rows(info))
    lo, hi = files.test_report["accuracy_ci95"]
    assert rows["Test accuracy"].startswith(f"{info.test_accuracy:.4f} (95% CI {lo:.4f}–{hi:.4f})")
    assert rows["Members"] == "trials 3, 7, 1" and rows["Test-time augmentation"] == "no"
    assert rows["Size on disk"].startswith("3.50 MiB") and rows["Parameters"] == "123.5k (123,456)"
    assert rows["Latency at batch 1"] == "1.23 ms per image" and rows["Throughput at batch 256"] == "9,876 images/s"
    assert rows["ECE (expected calibration error)"] == "0.0123" and "Macro-F1" in rows and "NLL (test log loss)" in rows
    assert rows["Speed measured with"] == "tensorflow backend, 20 repeats"
    assert rows["Member trial 7"] == "validation accuracy 0.96, best epoch 8 of 10"
    assert rows["Validation (what chose it)"].startswith(f"{4281 / 4410:.4f} (4281 correct)")
    fig = figures.plot_final_summary(files.test_report, files.best_config)
    assert fig.data[0].type == "table"


def test_final_summary_of_old_style_report(tmp_path: Path) -> None:
    files = load_run_files(fk.write_run_files(tmp_path))
    info = fig_final._final_summary_info(files.test_report, files.best_config)
    assert info.option is None and info.ci95 is None and info.ece is None and info.latency_ms is None
    assert info.params == 123456  # from best_config
    rows = dict(fig_final._final_rows(info))
    assert "CI" not in rows["Test accuracy"] and "Final model" not in rows and "Size on disk" not in rows
    assert "before the final stage compared options" in rows["Note"]
    assert fig_final._options_info(files.test_report, files.best_config).options == []
    assert figures.plot_final_options(files.test_report).layout.meta == NOTE_META


def test_final_summary_without_files_is_a_note() -> None:
    info = fig_final._final_summary_info(None, None)
    assert info.note == fig_final.NO_FINAL and figures.plot_final_summary(None).layout.meta == NOTE_META
    only_config = fig_final._final_summary_info(None, {"final_model": fk.FINAL_OPTIONS[0], "test_accuracy": None})
    assert only_config.option is not None and RunFile.TEST_REPORT in (only_config.note or "")


def test_options_mark_the_chosen_one(tmp_path: Path) -> None:
    files = load_run_files(fk.write_run_files(tmp_path, final=True))
    info = fig_final._options_info(files.test_report, files.best_config)
    assert [o.name for o in info.options] == [o["name"] for o in fk.FINAL_OPTIONS]
    assert info.chosen == [i == fk.CHOSEN_OPTION for i in range(len(fk.FINAL_OPTIONS))]
    # the same options from best_config when the test report is absent
    assert fig_final._options_info(None, files.best_config).chosen == info.chosen
    cells = fig_final._option_cells(info.options[1], False)
    assert [text for text, _ in cells] == ["single + TTA", "3", "yes", "1.39", "0.9678", "4268", "0.122", ""]
    fig = figures.plot_final_options(files.test_report)
    assert fig.data[0].cells.values[0][fk.CHOSEN_OPTION] == "ensemble of 3"


def test_export_info_reads_the_export_command_report() -> None:
    info = fig_final._export_info(fk.EXPORT_REPORT)
    saved, lite = info.artifacts
    assert (saved.format, saved.file, saved.quantize, saved.size_bytes, saved.runtime) == (
        "savedmodel",
        "best_model_savedmodel",
        None,
        5 * 2**20,
        "tensorflow",
    )
    assert saved.test_accuracy == pytest.approx(0.9561) and saved.agreement == 1.0
    assert saved.latency_ms == pytest.approx(1.1) and saved.images_per_s == pytest.approx(12000)
    assert (lite.file, lite.quantize, lite.size_bytes, lite.test_accuracy, lite.latency_ms) == (
        "best_model_int8.tflite",
        "int8",
        2**20,
        None,
        None,
    )
    texts = [text for text, _ in fig_final._artifact_cells(saved)]
    assert texts == [
        "savedmodel",
        "best_model_savedmodel",
        "float32",
        "5.00",
        "tensorflow",
        "0.9561",
        "100.00%",
        "1.10",
        "12,000",
        "",
    ]
    assert figures.plot_export_artifacts(fk.EXPORT_REPORT).data[0].type == "table"


def test_export_info_reads_a_list_in_the_other_spelling() -> None:
    info = fig_final._export_info(fk.EXPORT_REPORT_LIST)
    assert [(a.format, a.file, a.quantize, a.size_bytes) for a in info.artifacts] == [
        ("savedmodel", "best_model_savedmodel", None, 5 * 2**20),
        ("tflite", "best_model_int8.tflite", "int8", 2**20),
        ("onnx", "best_model.onnx", None, None),
    ]
    assert info.artifacts[0].latency_ms == pytest.approx(1.1) and info.artifacts[1].latency_ms is None
    assert [text for text, _ in fig_final._artifact_cells(info.artifacts[2])][3:] == ["—"] * 6 + [""]


@pytest.mark.parametrize("raw", [None, {}, {"artifacts": []}, {"artifacts": "x"}, {"artifacts": [1, None]}, [1]])
def test_export_info_of_odd_files_is_empty(raw: object) -> None:
    info = fig_final._export_info(raw)
    assert info.artifacts == [] and info.note
    assert figures.plot_export_artifacts(raw).layout.meta == NOTE_META  # type: ignore[arg-type]


# --- the dashboard -------------------------------------------------------------------------------------


def test_dashboard_shows_new_style_final_model(study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fk.write_run_files(tmp_path, final=True)
    text = write_dashboard(study, tmp_path).read_text(encoding="utf-8")
    check_self_contained(text)
    model = _section(text, "model")
    report = json.loads((tmp_path / RunFile.TEST_REPORT).read_text())
    lo, hi = report["accuracy_ci95"]
    assert f"95% CI {lo:.4f}–{hi:.4f}" in model and "ensemble of 3" in model and "trials 3, 7, 1" in model
    assert '<table class="facts">' in model and "3.50 MiB" in model and "9,876 images/s" in model
    assert "Options compared on validation" in model
    for option in fk.FINAL_OPTIONS:
        assert f'<td data-v="{option["name"]}">{option["name"]}</td>' in model
    marked = re.findall(r'<tr class="marked">(.*?)</tr>', model)
    assert len(marked) == 1 and ">ensemble of 3<" in marked[0] and "✓" in marked[0]
    assert "fig-reliability" in figure_ids(model)
    assert "Exported artifacts" not in model  # no export_report.json


def test_dashboard_with_old_style_report(study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fk.write_run_files(tmp_path)
    text = write_dashboard(study, tmp_path).read_text(encoding="utf-8")
    check_self_contained(text)
    model = _section(text, "model")
    assert '<table class="facts">' in model and "Test accuracy" in model and "95% CI" not in model
    assert "Options compared" not in model and "Exported artifacts" not in model and 'class="marked"' not in model
    assert "no reliability bins" in model and "fig-reliability" not in figure_ids(model)
    assert {"fig-confusion", "fig-per-class", "fig-misclassified"} <= set(figure_ids(model))


@pytest.mark.parametrize("export", [fk.EXPORT_REPORT, fk.EXPORT_REPORT_LIST])
def test_dashboard_shows_export_artifacts(study, tmp_path: Path, export: dict) -> None:  # type: ignore[no-untyped-def]
    fk.write_run_files(tmp_path, final=True, export=export)
    model = _section(write_dashboard(study, tmp_path).read_text(encoding="utf-8"), "model")
    assert "Exported artifacts" in model and RunFile.EXPORT_REPORT in model
    for name in ("best_model_savedmodel", "best_model_int8.tflite"):
        assert f">{name}<" in model
    assert '<td data-v="1048576">1.00</td>' in model  # size in MiB, sorted by bytes


@pytest.mark.parametrize(
    "export",
    ['{"artifacts": [{"format": "onn', [{"format": "onnx"}], {"artifacts": {}}, {"artifacts": {"x.onnx": "junk"}}],
)
def test_dashboard_ignores_odd_export_report(study, tmp_path: Path, export: object) -> None:  # type: ignore[no-untyped-def]
    fk.write_run_files(tmp_path, final=True, export=export)  # type: ignore[arg-type]
    files = load_run_files(tmp_path)
    assert files.problems == [] and not fig_final._export_info(files.export_report).artifacts
    text = write_dashboard(study, tmp_path).read_text(encoding="utf-8")
    check_self_contained(text)
    assert "Exported artifacts" not in text and RunFile.EXPORT_REPORT not in text


def test_dashboard_without_any_final_files(study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = _section(write_dashboard(study, tmp_path).read_text(encoding="utf-8"), "model")
    assert "No final model yet" in model and '<table class="facts">' not in model
