"""Final-model figures from ``test_report.json`` and ``misclassified.npz``: errors and calibration.

They take the loaded file contents (dicts) rather than a study, because the final
model is evaluated once after the search; None means the file is not there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go

from search.schema import RunFile

from ._common import finite, note_figure, plot_text, short
from .images import mosaic, png_data_uri

NO_REPORT = (
    "No test report: the final model was not evaluated on a test set (no test.p, or the search is still running)."
)


def _names(report: Mapping[str, Any] | None, n: int, fallback: Sequence[str] | None = None) -> list[str]:
    """Class names for ids 0..n-1 from the report (or ``fallback``), else "class i"."""
    for source in ((report or {}).get("class_names"), fallback):
        if source is not None and len(source) >= n:
            return [str(x) for x in list(source)[:n]]
    return [f"class {i}" for i in range(n)]


class ConfusionInfo(NamedTuple):
    """Counts with rows = true class, columns = predicted class."""

    matrix: np.ndarray
    names: list[str]
    n_test: int
    accuracy: float | None
    note: str | None


def _confusion_info(report: Mapping[str, Any] | None) -> ConfusionInfo:
    empty = np.zeros((0, 0), dtype=int)
    if not report:
        return ConfusionInfo(empty, [], 0, None, NO_REPORT)
    try:
        matrix = np.asarray(report.get("confusion_matrix"), dtype=np.int64)
    except (TypeError, ValueError):
        matrix = empty
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        return ConfusionInfo(
            empty, [], 0, finite(report.get("test_accuracy")), "The test report has no usable confusion matrix."
        )
    total = int(matrix.sum())
    accuracy = finite(report.get("test_accuracy"))
    if accuracy is None and total:
        accuracy = float(np.trace(matrix) / total)
    return ConfusionInfo(matrix, _names(report, matrix.shape[0]), total, accuracy, None)


def _draw_confusion(info: ConfusionInfo) -> go.Figure:
    title = "Confusion matrix on the test set (row-normalised)"
    if info.matrix.size == 0:
        return note_figure(title, info.note or NO_REPORT)
    counts = info.matrix
    support = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, support, out=np.zeros(counts.shape, dtype=float), where=support > 0)
    n = counts.shape[0]
    labels = [f"{i} {plot_text(short(name, 24))}" for i, name in enumerate(info.names)]
    names = [plot_text(name) for name in info.names]
    hover = [
        [
            f"true {i}: {names[i]}<br>predicted {j}: {names[j]}<br>{counts[i, j]} images "
            f"({share[i, j]:.1%} of the class)"
            for j in range(n)
        ]
        for i in range(n)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=np.sqrt(share),
            x=labels,
            y=labels,
            colorscale="Blues",
            hovertext=hover,
            hoverinfo="text",
            colorbar=dict(
                title=dict(text="share"),
                tickvals=np.sqrt([0, 0.01, 0.1, 0.5, 1]).tolist(),
                ticktext=["0", "1%", "10%", "50%", "100%"],
            ),
            xgap=0.5,
            ygap=0.5,
        )
    )
    accuracy = f" — accuracy {info.accuracy:.4f} on {info.n_test} images" if info.accuracy is not None else ""
    fig.update_layout(
        title=dict(text=title + accuracy),
        template="plotly_white",
        height=max(450, 220 + 17 * n),
        xaxis=dict(title="predicted", tickfont=dict(size=9), tickangle=-60),
        yaxis=dict(title="true", tickfont=dict(size=9), autorange="reversed"),
        margin=dict(l=170, b=150),
    )
    return fig


def plot_confusion(report: Mapping[str, Any] | None) -> go.Figure:
    """Heatmap of the test confusion matrix with class names (colour on a square-root scale)."""
    return _draw_confusion(_confusion_info(report))


class ClassScore(NamedTuple):
    class_id: int
    name: str
    support: int
    accuracy: float
    precision: float | None
    recall: float | None
    f1: float | None


class PerClassInfo(NamedTuple):
    """Per-class test scores, worst accuracy first."""

    scores: list[ClassScore]
    macro_f1: float | None
    accuracy: float | None
    note: str | None
    validation: dict[int, float] | None = None  # the final model's accuracy per validation class, by class id


def _per_class_info(report: Mapping[str, Any] | None) -> PerClassInfo:
    if not report:
        return PerClassInfo([], None, None, NO_REPORT)
    rows = report.get("per_class")
    scores = _reported_scores(report, rows) if isinstance(rows, list) and rows else _confusion_scores(report)
    scores.sort(key=lambda s: (s.accuracy, s.class_id))
    note = None if scores else "The test report has no per-class scores."
    final = report.get("final_model")
    per_class = final.get("val_class_accuracy") if isinstance(final, Mapping) else None
    validation = (
        {i: v for i, v in enumerate(per_class) if finite(v) is not None} if isinstance(per_class, list) else None
    )
    return PerClassInfo(
        scores, finite(report.get("macro_f1")), finite(report.get("test_accuracy")), note, validation or None
    )


def _reported_scores(report: Mapping[str, Any], rows: list) -> list[ClassScore]:
    """The report's own per-class rows (accuracy, else recall); malformed rows are left out."""
    names = _names(report, len(rows))
    scores = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            continue
        class_id = int(row.get("class_id", i))
        accuracy = finite(row.get("accuracy"))
        if accuracy is None:
            accuracy = finite(row.get("recall"))
        if accuracy is None:
            continue
        name = str(row.get("name") or (names[class_id] if class_id < len(names) else f"class {class_id}"))
        precision, recall, f1 = (finite(row.get(k)) for k in ("precision", "recall", "f1"))
        scores.append(ClassScore(class_id, name, int(row.get("support") or 0), accuracy, precision, recall, f1))
    return scores


def _confusion_scores(report: Mapping[str, Any]) -> list[ClassScore]:
    """Per-class scores derived from the confusion matrix, for reports without per-class rows."""
    confusion = _confusion_info(report)
    matrix = confusion.matrix
    scores = []
    for i in range(matrix.shape[0]):
        support = int(matrix[i].sum())
        if not support:
            continue
        predicted = int(matrix[:, i].sum())
        recall = matrix[i, i] / support
        precision = matrix[i, i] / predicted if predicted else None
        f1 = (2 * precision * recall / (precision + recall)) if precision and recall else 0.0
        scores.append(
            ClassScore(
                i,
                confusion.names[i],
                support,
                float(recall),
                None if precision is None else float(precision),
                float(recall),
                float(f1),
            )
        )
    return scores


def _draw_per_class(info: PerClassInfo) -> go.Figure:
    title = "Per-class test accuracy, worst first" + (" (diamonds: validation)" if info.validation else "")
    if not info.scores:
        return note_figure(title, info.note or NO_REPORT)
    labels = [f"{s.class_id} {plot_text(short(s.name, 28))}" for s in info.scores]
    values = [s.accuracy for s in info.scores]
    colors = ["#d62728" if v < 0.9 else "#ff7f0e" if v < 0.97 else "#2ca02c" for v in values]
    hover = [
        f"{s.class_id}: {plot_text(s.name)}<br>accuracy {s.accuracy:.4f} on {s.support} images"
        + (f"<br>precision {s.precision:.3f}" if s.precision is not None else "")
        + (f"<br>F1 {s.f1:.3f}" if s.f1 is not None else "")
        for s in info.scores
    ]
    fig = go.Figure(
        go.Bar(x=labels, y=values, marker=dict(color=colors), hovertext=hover, hoverinfo="text", name="test")
    )
    if info.validation:  # where the final model already erred on validation, beside where it errs on test
        shown = [
            (label, info.validation[s.class_id])
            for label, s in zip(labels, info.scores)
            if s.class_id in info.validation
        ]
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in shown],
                y=[v for _, v in shown],
                mode="markers",
                name="validation",
                marker=dict(color="#1f77b4", symbol="diamond", size=7),
                hovertemplate="validation accuracy %{y:.4f}<extra></extra>",
            )
        )
        values = values + [v for _, v in shown]
    extra = []
    if info.accuracy is not None:
        extra.append(f"overall {info.accuracy:.4f}")
        fig.add_hline(y=info.accuracy, line=dict(color="#555", dash="dash"))
    if info.macro_f1 is not None:
        extra.append(f"macro F1 {info.macro_f1:.4f}")
    fig.update_layout(
        title=dict(text=title + (f" ({', '.join(extra)})" if extra else "")),
        template="plotly_white",
        height=520,
        yaxis=dict(title="accuracy (recall)", range=[min(0.0, min(values)), 1.02]),
        xaxis=dict(tickangle=-60, tickfont=dict(size=9), categoryorder="array", categoryarray=labels),
        margin=dict(b=140),
    )
    return fig


def plot_per_class(report: Mapping[str, Any] | None) -> go.Figure:
    """Bars of per-class test accuracy sorted worst first, overall accuracy as a line."""
    return _draw_per_class(_per_class_info(report))


class ImageGridInfo(NamedTuple):
    """Small images with a short label under each and a longer hover text.

    ``labels`` and ``hovers`` are figure text (``<br>`` breaks lines), user strings in them already
    through ``plot_text``; ``title`` and ``note`` are plain text.
    """

    images: list[np.ndarray | None]
    labels: list[str]
    hovers: list[str]
    cols: int
    title: str
    note: str | None


def _misclassified_info(
    misclassified: Mapping[str, Any] | None, class_names: Sequence[str] | None = None, cols: int = 8
) -> ImageGridInfo:
    title = "Misclassified test images (true → predicted)"
    if misclassified is None:
        return ImageGridInfo([], [], [], cols, title, f"No {RunFile.MISCLASSIFIED} (no test set, or not written yet).")
    try:
        images = np.asarray(misclassified["images"])
        true = np.asarray(misclassified["true"]).astype(int).tolist()
        pred = np.asarray(misclassified["pred"]).astype(int).tolist()
    except (KeyError, TypeError, ValueError):
        return ImageGridInfo([], [], [], cols, title, f"{RunFile.MISCLASSIFIED} lacks images/true/pred arrays.")
    k = min(len(images), len(true), len(pred))
    if k == 0 or images.ndim not in (3, 4):
        return ImageGridInfo([], [], [], cols, title, "The final model misclassified no test image shown here.")
    highest = max(true[:k] + pred[:k]) + 1
    names = _names({"class_names": class_names} if class_names is not None else None, highest)
    labels = [f"{t} → {p}" for t, p in zip(true[:k], pred[:k])]
    names = [plot_text(name) for name in names]
    hovers = [f"true {t}: {names[t]}<br>predicted {p}: {names[p]}" for t, p in zip(true[:k], pred[:k])]
    return ImageGridInfo([images[i] for i in range(k)], labels, hovers, cols, title, None)


def _draw_image_grid(info: ImageGridInfo, label_size: int = 10) -> go.Figure:
    """One PNG mosaic plus invisible markers for hover, labels as annotations."""
    if not info.images:
        return note_figure(info.title, info.note or "No images.")
    lines = max(label.count("<br>") + 1 for label in info.labels) if info.labels else 1
    label_height = 8 + 8 * lines  # mosaic pixels; a 32 px tile shows ~90 px wide
    canvas, centres = mosaic(info.images, info.cols, pad=4, label_height=label_height)
    height, width = canvas.shape[:2]
    fig = go.Figure(go.Image(source=png_data_uri(canvas), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=[c[0] for c in centres],
            y=[c[1] for c in centres],
            mode="markers",
            marker=dict(size=28, color="rgba(0,0,0,0)"),
            hovertext=info.hovers,
            hoverinfo="text",
            showlegend=False,
        )
    )
    for (cx, _, ly), label in zip(centres, info.labels):
        fig.add_annotation(x=cx, y=ly, text=label, showarrow=False, font=dict(size=label_size))
    assumed_width = 1000  # the dashboard column width; the image keeps its aspect ratio
    fig.update_layout(
        title=dict(text=plot_text(info.title)),
        template="plotly_white",
        height=int(min(1400, max(220, assumed_width * height / width + 70))),
        xaxis=dict(visible=False, range=[0, width]),
        yaxis=dict(visible=False, range=[height, 0]),
        margin=dict(l=10, r=10, t=50, b=10),
    )
    return fig


def plot_misclassified(misclassified: Mapping[str, Any] | None, class_names: Sequence[str] | None = None) -> go.Figure:
    """Grid of misclassified test images labelled "true → predicted" (names on hover)."""
    return _draw_image_grid(_misclassified_info(misclassified, class_names))


class ReliabilityInfo(NamedTuple):
    """Test images binned by the model's top confidence: per bin its edges, mean confidence,
    accuracy and image count (confidence and accuracy None where the bin is empty)."""

    lower: list[float]
    upper: list[float]
    confidence: list[float | None]
    accuracy: list[float | None]
    count: list[int]
    ece: float | None
    note: str | None


def _reliability_info(report: Mapping[str, Any] | None) -> ReliabilityInfo:
    empty = ReliabilityInfo([], [], [], [], [], None, NO_REPORT)
    if not report:
        return empty
    raw = report.get("reliability")
    if not isinstance(raw, Mapping):
        return empty._replace(
            note="This test report has no reliability bins (written before calibration was measured)."
        )
    edges = [finite(e) for e in raw.get("edges") or []] if isinstance(raw.get("edges"), list) else []
    n = len(edges) - 1
    lists = [raw.get(key) for key in ("confidence", "accuracy", "count")]
    if n < 1 or None in edges or any(not isinstance(x, list) or len(x) != n for x in lists):
        return empty._replace(note="The test report's reliability bins are malformed (edges and bins disagree).")
    confidence, accuracy, counts = (
        [finite(v) for v in lists[0]],
        [finite(v) for v in lists[1]],
        [int(finite(c) or 0) for c in lists[2]],
    )
    ece = finite(raw.get("ece"))
    if ece is None:
        ece = finite(report.get("ece"))
    note = None if sum(counts) else "No test image fell into any reliability bin."
    return ReliabilityInfo(edges[:-1], edges[1:], confidence, accuracy, counts, ece, note)  # type: ignore[arg-type]


def _draw_reliability(info: ReliabilityInfo) -> go.Figure:
    title = "Reliability on the test set"
    if not sum(info.count):
        return note_figure(title, info.note or NO_REPORT)
    total = sum(info.count)
    fig = go.Figure(_reliability_traces(info))
    ece = f" — ECE {info.ece:.4f}" if info.ece is not None else ""
    fig.update_layout(
        title=dict(text=f"{title}{ece} ({total} images, {len(info.count)} bins)"),
        template="plotly_white",
        height=460,
        bargap=0,
        legend=dict(orientation="h", y=-0.18),
        xaxis=dict(title="confidence (top softmax probability)", range=[0, 1]),
        yaxis=dict(title="accuracy", range=[0, 1.02]),
    )
    return fig


def _reliability_traces(info: ReliabilityInfo) -> list[go.Bar | go.Scatter]:
    """Accuracy per non-empty bin, the bins' mean confidence, and the diagonal of perfect calibration."""
    shown = [i for i, (c, a) in enumerate(zip(info.count, info.accuracy)) if c > 0 and a is not None]
    total = sum(info.count)

    def hover(i: int) -> str:
        conf = info.confidence[i]
        return (
            f"confidence {info.lower[i]:.3f}–{info.upper[i]:.3f}<br>{info.count[i]} images "
            f"({info.count[i] / total:.1%})<br>accuracy {info.accuracy[i]:.3f}"
            + (f"<br>mean confidence {conf:.3f}" if conf is not None else "")
        )

    bars = go.Bar(
        x=[(info.lower[i] + info.upper[i]) / 2 for i in shown],
        y=[info.accuracy[i] for i in shown],
        width=[info.upper[i] - info.lower[i] for i in shown],
        customdata=[info.count[i] for i in shown],
        name="accuracy per bin",
        marker=dict(color="#1f77b4", line=dict(color="white", width=1)),
        hovertext=[hover(i) for i in shown],
        hoverinfo="text",
    )
    with_conf = [i for i in shown if info.confidence[i] is not None]
    means = go.Scatter(
        x=[info.confidence[i] for i in with_conf],
        y=[info.accuracy[i] for i in with_conf],
        mode="markers",
        name="mean confidence",
        hoverinfo="skip",
        marker=dict(color="#ff7f0e", symbol="diamond", size=8),
    )
    diagonal = go.Scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        name="perfectly calibrated",
        hoverinfo="skip",
        line=dict(color="#555", dash="dash"),
    )
    return [bars, means, diagonal]


def plot_reliability(report: Mapping[str, Any] | None) -> go.Figure:
    """Accuracy per confidence bin against the diagonal (bars below it: over-confident), ECE in the title."""
    return _draw_reliability(_reliability_info(report))
