"""The final model as tables: what was built from the retrained candidates, how it scores and runs.

The final stage compares options on validation (one model, with test-time augmentation, ensembles
of several candidates), keeps one and records the choice and the comparison in ``test_report.json``
and ``best_config.json``; an export step lists the deployable artifacts in ``export_report.json``.
Files written before those keys existed still draw: a missing value is left out, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any, NamedTuple

import plotly.graph_objects as go

from search.schema import RunFile

from ._common import finite, fmt_count, fmt_value, note_figure, plot_text

NO_FINAL = (
    f"No final model yet: neither {RunFile.TEST_REPORT} nor {RunFile.BEST_CONFIG} is there "
    "(the search is still running, or was run without a final retraining)."
)
MIB = 2**20
CHOSEN = "✓"


def _int(value: Any) -> int | None:
    """An integral number as int (JSON may carry 3.0); None for bools, junk and fractions."""
    if isinstance(value, bool):
        return None
    number = finite(value)
    return int(number) if number is not None and number == int(number) else None


def _first(raw: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` that ``raw`` holds with a value (files of different versions name them differently)."""
    return next((raw[k] for k in keys if raw.get(k) is not None), None)


class FinalOption(NamedTuple):
    """One way of building the final model from the retrained candidates, scored on validation."""

    name: str
    members: list[int]  # trial numbers
    tta: bool | None
    temperature: float | None
    val_accuracy: float | None
    val_correct: int | None
    val_nll: float | None

    @property
    def key(self) -> tuple[str, tuple[int, ...], bool | None]:
        """What identifies an option (its scores are the same numbers in both files)."""
        return self.name, tuple(self.members), self.tta


def _option(raw: Any) -> FinalOption | None:
    if not isinstance(raw, Mapping):
        return None
    members = raw.get("members")
    numbers = [n for n in (_int(m) for m in members) if n is not None] if isinstance(members, list) else []
    tta = raw.get("tta")
    return FinalOption(
        str(raw.get("name") or "?"),
        numbers,
        tta if isinstance(tta, bool) else None,
        finite(raw.get("temperature")),
        finite(raw.get("val_accuracy")),
        _int(raw.get("val_correct")),
        finite(raw.get("val_nll")),
    )


def _members_text(members: Sequence[int]) -> str:
    if not members:
        return "—"
    return ("trial " if len(members) == 1 else "trials ") + ", ".join(map(str, members))


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else "yes" if value else "no"


class Member(NamedTuple):
    """One member of the final model, from ``best_config.json``: the search's kept model of a trial
    or a final-stage retrain of its configuration, with its weight in the ensemble."""

    trial_number: int
    val_accuracy: float | None
    epochs: int | None
    best_epoch: int | None
    source: str | None = None  # "search" | "retrain" | "further" (older files: retrain)
    weight: float | None = None


class FinalSummaryInfo(NamedTuple):
    """Headline facts of the final model; None where the files do not say."""

    option: FinalOption | None
    members: list[Member]
    final_data: str | None
    test_accuracy: float | None
    ci95: tuple[float, float] | None
    n_test: int | None
    macro_f1: float | None
    ece: float | None
    nll: float | None
    params: int | None
    size_bytes: int | None
    latency_ms: float | None
    images_per_s: float | None
    speed_setup: str | None  # how the speed was measured (backend, repeats)
    note: str | None


def _members(config: Mapping[str, Any]) -> list[Member]:
    raw = config.get("members")
    members = []
    for row in raw if isinstance(raw, list) else []:
        number = _int(row.get("trial_number")) if isinstance(row, Mapping) else None
        if number is not None:
            source = row.get("source") if row.get("source") in ("search", "retrain", "further") else None
            members.append(
                Member(
                    number,
                    finite(row.get("val_accuracy")),
                    _int(row.get("epochs")),
                    _int(row.get("best_epoch")),
                    source,
                    finite(row.get("weight")),
                )
            )
    return members


def _final_summary_info(
    report: Mapping[str, Any] | None, best_config: Mapping[str, Any] | None = None
) -> FinalSummaryInfo:
    report, config = report or {}, best_config or {}
    option = _option(report.get("final_model")) or _option(config.get("final_model"))
    ci = report.get("accuracy_ci95")
    bounds = [finite(x) for x in ci] if isinstance(ci, (list, tuple)) and len(ci) == 2 else []
    speed = report.get("speed") if isinstance(report.get("speed"), Mapping) else {}
    setup = [
        f"{speed['backend']} backend" if speed.get("backend") else None,
        f"{_int(speed.get('repeats'))} repeats" if _int(speed.get("repeats")) else None,
    ]
    test_accuracy = finite(report.get("test_accuracy"))
    note = None
    if not report and not config:
        note = NO_FINAL
    elif not report:
        note = f"No {RunFile.TEST_REPORT}: the final model was not evaluated on a test set (no test.p, or not yet)."
    elif option is None:
        note = (
            "This test report was written before the final stage compared options: it has no choice of "
            "ensemble, calibration or speed to show."
        )
    return FinalSummaryInfo(
        option=option,
        members=_members(config),
        final_data=str(config["final_data"]) if config.get("final_data") else None,
        test_accuracy=test_accuracy if test_accuracy is not None else finite(config.get("test_accuracy")),
        ci95=(bounds[0], bounds[1]) if len(bounds) == 2 and None not in bounds else None,  # type: ignore[arg-type]
        n_test=_int(report.get("n_test")),
        macro_f1=finite(report.get("macro_f1")),
        ece=finite(report.get("ece")),
        nll=finite(report.get("nll")),
        params=_int(report.get("params")) or _int(config.get("params")),
        size_bytes=_int(report.get("size_bytes")),
        latency_ms=finite(speed.get("latency_ms_batch1")),
        images_per_s=finite(speed.get("images_per_s_batch256")),
        speed_setup=", ".join(s for s in setup if s) or None,
        note=note,
    )


def _accuracy_text(info: FinalSummaryInfo) -> str:
    if info.test_accuracy is None:
        return "—"
    text = f"{info.test_accuracy:.4f}"
    if info.ci95 is not None:
        text += f" (95% CI {info.ci95[0]:.4f}–{info.ci95[1]:.4f})"
    return text + (f" on {info.n_test} images" if info.n_test else "")


def _option_rows(info: FinalSummaryInfo) -> list[tuple[str, str | None]]:
    """What the final model is: the chosen option, each member with its validation accuracy, and the
    validation numbers that chose it."""
    option, members = info.option, {m.trial_number: m for m in info.members}
    assert option is not None
    # Newer files list exactly the final model's members (a trial may appear as the search's model
    # and as a retrain); older ones list every retrained candidate, of which the option names some.
    listed = (
        info.members if any(m.source for m in info.members) else [members[n] for n in option.members if n in members]
    )
    rows: list[tuple[str, str | None]] = [
        ("Final model", option.name),
        ("Members", _members_text(option.members)),
        ("Test-time augmentation", _yes_no(option.tta)),
        ("Temperature", fmt_value(option.temperature) if option.temperature is not None else "none"),
    ]
    origins = {"search": " (the search's model)", "retrain": " (retrained)", "further": " (trained further)"}
    for m in listed:
        epochs = f", best epoch {m.best_epoch} of {m.epochs}" if m.best_epoch and m.epochs else ""
        weight = f", weight {m.weight:.2f}" if m.weight is not None else ""
        rows.append(
            (
                f"Member trial {m.trial_number}{origins.get(m.source or '', '')}",
                f"validation accuracy {fmt_value(m.val_accuracy)}{epochs}{weight}",
            )
        )
    if option.val_accuracy is not None:
        chosen = f"{option.val_accuracy:.4f}"
        chosen += f" ({option.val_correct} correct)" if option.val_correct is not None else ""
        chosen += f", NLL {fmt_value(option.val_nll)}" if option.val_nll is not None else ""
        rows.append(("Validation (what chose it)", chosen))
    return rows


def _final_rows(info: FinalSummaryInfo) -> list[tuple[str, str]]:
    """The (label, text) rows of the final-model table, in reading order; unknown values are left out."""
    rows: list[tuple[str, str | None]] = []
    if info.option is not None:
        rows += _option_rows(info)
    rows += [
        ("Retrained on", info.final_data),
        ("Test accuracy", _accuracy_text(info) if info.test_accuracy is not None else None),
        ("Macro-F1", fmt_value(info.macro_f1) if info.macro_f1 is not None else None),
        ("ECE (expected calibration error)", fmt_value(info.ece) if info.ece is not None else None),
        ("NLL (test log loss)", fmt_value(info.nll) if info.nll is not None else None),
        ("Parameters", f"{fmt_count(info.params)} ({info.params:,})" if info.params is not None else None),
        ("Size on disk", f"{info.size_bytes / MIB:.2f} MiB ({RunFile.BEST_MODEL})" if info.size_bytes else None),
        ("Latency at batch 1", f"{info.latency_ms:.2f} ms per image" if info.latency_ms is not None else None),
        ("Throughput at batch 256", f"{info.images_per_s:,.0f} images/s" if info.images_per_s is not None else None),
        ("Speed measured with", info.speed_setup),
        ("Note", info.note),
    ]
    return [(label, text) for label, text in rows if text is not None]


class FinalOptionsInfo(NamedTuple):
    """Every option compared on validation, in the order compared; ``chosen`` marks the final one."""

    columns: list[str]
    options: list[FinalOption]
    chosen: list[bool]
    note: str | None


OPTION_COLUMNS = ["option", "members", "TTA", "temperature", "val_accuracy", "val_correct", "val_nll", "chosen"]


def _options_info(report: Mapping[str, Any] | None, best_config: Mapping[str, Any] | None = None) -> FinalOptionsInfo:
    for source in (report or {}, best_config or {}):
        raw = source.get("final_options")
        options = [o for o in (_option(r) for r in raw) if o is not None] if isinstance(raw, list) else []
        if options:
            final = _option(source.get("final_model"))
            chosen = [final is not None and o.key == final.key for o in options]
            if sum(chosen) > 1:  # the same option listed twice: mark the first
                first = chosen.index(True)
                chosen = [i == first for i in range(len(chosen))]
            return FinalOptionsInfo(OPTION_COLUMNS, options, chosen, None)
    return FinalOptionsInfo(
        OPTION_COLUMNS,
        [],
        [],
        "No options were compared (a report from before the final "
        "stage compared ensembles and test-time augmentation).",
    )


def _option_cells(option: FinalOption, chosen: bool) -> list[tuple[str, Any]]:
    """(shown text, sort key) per column of ``OPTION_COLUMNS``."""
    return [
        (option.name, option.name),
        (", ".join(map(str, option.members)) or "—", len(option.members)),
        (_yes_no(option.tta), None if option.tta is None else int(option.tta)),
        (fmt_value(option.temperature), option.temperature),
        (fmt_value(option.val_accuracy), option.val_accuracy),
        (fmt_value(option.val_correct), option.val_correct),
        (fmt_value(option.val_nll), option.val_nll),
        (CHOSEN if chosen else "", int(chosen)),
    ]


class ExportArtifact(NamedTuple):
    """One deployable file written from the final model, as scored in its own runtime."""

    format: str
    file: str
    quantize: str | None  # None: float32
    size_bytes: int | None
    runtime: str | None  # what ran it when scored (onnxruntime, tflite interpreter...)
    test_accuracy: float | None
    agreement: float | None  # share of test images given the same class as best_model.keras
    latency_ms: float | None  # per image at batch 1
    images_per_s: float | None  # at batch 256
    error: str | None


class ExportInfo(NamedTuple):
    artifacts: list[ExportArtifact]
    note: str | None


EXPORT_COLUMNS = [
    "format",
    "file",
    "quantization",
    "size (MiB)",
    "runtime",
    "test_accuracy",
    "same as .keras",
    "latency_ms (batch 1)",
    "images/s (batch 256)",
    "note",
]


def _latency_ms(row: Mapping[str, Any], speed: Mapping[str, Any]) -> float | None:
    milliseconds = finite(_first(row, "latency_ms_batch1", "latency_ms") or speed.get("latency_ms_batch1"))
    seconds = finite(_first(row, "seconds_per_image_batch1", "latency_s"))
    return milliseconds if milliseconds is not None else None if seconds is None else seconds * 1000


def _export_info(export_report: Any) -> ExportInfo:
    """Artifacts from ``export_report.json``, read tolerantly: an odd file gives none, never an error.

    ``artifacts`` may be a list of entries or a dict of them by file name (what the export command
    writes); sizes, quantisation and speeds are read under either spelling the export step used.
    """
    raw = export_report.get("artifacts") if isinstance(export_report, Mapping) else None
    entries: list[tuple[Any, Any]] = (
        list(raw.items()) if isinstance(raw, Mapping) else ([(None, r) for r in raw] if isinstance(raw, list) else [])
    )
    artifacts = []
    for name, row in entries:
        if not isinstance(row, Mapping):
            continue
        path = _first(row, "path", "file", "name") or name
        speed = row.get("speed") if isinstance(row.get("speed"), Mapping) else {}
        quantize, error = _first(row, "quantize", "quantization"), _first(row, "error", "note")
        artifacts.append(
            ExportArtifact(
                format=str(row.get("format") or "?"),
                file=PurePath(str(path)).name if path else "—",
                quantize=str(quantize) if quantize else None,
                size_bytes=_int(_first(row, "size_bytes", "bytes")),
                runtime=str(row["runtime"]) if row.get("runtime") else None,
                test_accuracy=finite(_first(row, "test_accuracy", "accuracy")),
                agreement=finite(row.get("agreement_with_keras")),
                latency_ms=_latency_ms(row, speed),
                images_per_s=finite(
                    _first(row, "images_per_second_batch256", "images_per_s_batch256")
                    or speed.get("images_per_s_batch256")
                ),
                error=str(error) if error else None,
            )
        )
    return ExportInfo(artifacts, None if artifacts else f"No exported artifacts in {RunFile.EXPORT_REPORT}.")


def _artifact_cells(a: ExportArtifact) -> list[tuple[str, Any]]:
    """(shown text, sort key) per column of ``EXPORT_COLUMNS``."""
    return [
        (a.format, a.format),
        (a.file, a.file),
        (a.quantize or "float32", a.quantize or "float32"),
        (f"{a.size_bytes / MIB:.2f}" if a.size_bytes is not None else "—", a.size_bytes),
        (a.runtime or "—", a.runtime or ""),
        (fmt_value(a.test_accuracy), a.test_accuracy),
        (f"{a.agreement:.2%}" if a.agreement is not None else "—", a.agreement),
        (f"{a.latency_ms:.2f}" if a.latency_ms is not None else "—", a.latency_ms),
        (f"{a.images_per_s:,.0f}" if a.images_per_s is not None else "—", a.images_per_s),
        (a.error or "", a.error or ""),
    ]


def _table_figure(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    marked: Sequence[bool] | None = None,
    bold_first: bool = False,
) -> go.Figure:
    """A plotly table (for notebooks; the dashboard shows these as HTML tables), marked rows shaded.

    Cells are plain text (report values: option names, paths, error messages) shown as they are;
    ``bold_first`` sets the first column in bold (row labels).
    """
    fill = [["#e6f4ea" if m else "white" for m in (marked or [False] * len(rows))]] * len(columns)
    values = [[plot_text(row[i]) for row in rows] for i in range(len(columns))]
    if bold_first and values:
        values[0] = [f"<b>{text}</b>" for text in values[0]]
    fig = go.Figure(
        go.Table(
            header=dict(values=[f"<b>{plot_text(c)}</b>" for c in columns], align="left", fill=dict(color="#e8eef7")),
            cells=dict(values=values, align="left", fill=dict(color=fill)),
        )
    )
    fig.update_layout(
        title=dict(text=plot_text(title)), height=min(900, 120 + 26 * len(rows)), margin=dict(l=10, r=10, t=50, b=10)
    )
    return fig


def _draw_final_summary(info: FinalSummaryInfo) -> go.Figure:
    title = "Final model"
    if info.note == NO_FINAL:
        return note_figure(title, NO_FINAL)
    rows = _final_rows(info)
    return _table_figure(title, ["", ""], [[label, text] for label, text in rows], bold_first=True)


def _draw_options(info: FinalOptionsInfo) -> go.Figure:
    title = "Final-model options compared on validation"
    if not info.options:
        return note_figure(title, info.note or "No options were compared.")
    rows = [[text for text, _ in _option_cells(o, c)] for o, c in zip(info.options, info.chosen)]
    return _table_figure(title, info.columns, rows, info.chosen)


def _draw_export(info: ExportInfo) -> go.Figure:
    title = "Exported artifacts"
    if not info.artifacts:
        return note_figure(title, info.note or "No exported artifacts.")
    return _table_figure(title, EXPORT_COLUMNS, [[text for text, _ in _artifact_cells(a)] for a in info.artifacts])


def plot_final_summary(report: Mapping[str, Any] | None, best_config: Mapping[str, Any] | None = None) -> go.Figure:
    """What the final model is (option, members, TTA, temperature) and its test accuracy, calibration, size, speed."""
    return _draw_final_summary(_final_summary_info(report, best_config))


def plot_final_options(report: Mapping[str, Any] | None, best_config: Mapping[str, Any] | None = None) -> go.Figure:
    """Every final-model option compared on validation, the chosen one shaded."""
    return _draw_options(_options_info(report, best_config))


def plot_export_artifacts(export_report: Mapping[str, Any] | None) -> go.Figure:
    """Deployable artifacts of the final model: format, quantisation, size, test accuracy, latency."""
    return _draw_export(_export_info(export_report))
