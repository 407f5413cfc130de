"""Deployable artifacts of the final model, each checked in its own runtime on ``test.p``.

One function for both callers, the end of a job (``--export``) and ``run_search.py export-model``,
so an artifact is always reported the same way: its size, its test accuracy in its runtime, its
agreement with the Keras model and its CPU latency, in ``export_report.json``. Both write into a set
of the final model's files (search/final/final_set.py): the one the final stage is writing, or the
current one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from ..data import Split
from ..schema import RunFile
from .export import Artifact, export_model, update_export_report
from .final_set import current_final_set
from .runtimes import score


def export_and_score(
    run_dir: Path,
    formats: Sequence[str],
    test: Split | None,
    say: Callable[[str], None],
    *,
    quantize: str | None = None,
    representative: np.ndarray | None = None,
    command: str = "",
    into: Path | None = None,
) -> list[Artifact]:
    """Write ``formats`` of the run's final model; score each on ``test`` when there is one. ``into``: the
    folder of the set a final stage is writing; by default the run's current set (``export-model``: the
    artifact joins the model it was made from, and gets its name in ``run_dir``). The artifacts returned
    carry their names in ``run_dir``."""
    if into is not None:
        return _export_and_score(
            Path(into),
            Path(run_dir),
            formats,
            test,
            say,
            quantize=quantize,
            representative=representative,
            command=command,
        )
    with current_final_set(Path(run_dir)) as folder:
        return _export_and_score(
            folder, Path(run_dir), formats, test, say, quantize=quantize, representative=representative, command=command
        )


def _export_and_score(
    folder: Path,
    run_dir: Path,
    formats: Sequence[str],
    test: Split | None,
    say: Callable[[str], None],
    *,
    quantize: str | None,
    representative: np.ndarray | None,
    command: str,
) -> list[Artifact]:
    model_path = folder / RunFile.BEST_MODEL
    written = export_model(model_path, folder, list(formats), quantize=quantize, representative=representative)
    artifacts = [dataclasses.replace(a, path=run_dir / a.name) for a in written]
    reference = None
    if test is not None and written:
        model = keras.saving.load_model(model_path, compile=False)
        reference = model.predict(test.features.astype("float32"), batch_size=256, verbose=0)
    for artifact, in_folder in zip(artifacts, written):
        results: dict = {"command": command}
        line = f"wrote {artifact.path} ({artifact.bytes / 2**20:.2f} MiB, {artifact.quantization or 'float32'})"
        if test is not None:
            try:
                results.update(score(in_folder, test.features, test.labels, reference))
            except Exception as exc:  # a runtime that cannot run the artifact is a finding
                results["score_error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
                say(line + f": WARNING: it does not run in its runtime ({results['score_error']})")
                update_export_report(folder / RunFile.EXPORT_REPORT, artifact, results)
                continue
            line += (
                f": test accuracy {results['test_accuracy']:.4f} on {results['n_test']} images in "
                f"{results['runtime']} (same class as "
                f"the Keras model for {results['agreement_with_keras']:.2%}), "
                f"{results['seconds_per_image_batch1'] * 1000:.3f} ms per image at batch 1, "
                f"{results['images_per_second_batch256']:,.0f} images/s at batch 256"
            )
        say(line)
        update_export_report(folder / RunFile.EXPORT_REPORT, artifact, results)
    return artifacts
