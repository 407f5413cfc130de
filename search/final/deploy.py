"""Deployable artifacts of the final model, each checked in its own runtime on ``test.p``.

One function for both callers, the end of a job (``--export``) and ``run_search.py export-model``,
so an artifact is always reported the same way: its size, its test accuracy in its runtime, its
agreement with the Keras model and its CPU latency, in ``export_report.json``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from ..data import Split
from ..schema import RunFile
from .export import Artifact, export_model, update_export_report
from .runtimes import score


def export_and_score(run_dir: Path, formats: Sequence[str], test: Split | None, say: Callable[[str], None], *,
                     quantize: str | None = None, representative: np.ndarray | None = None,
                     command: str = "") -> list[Artifact]:
    """Write ``formats`` of ``run_dir/best_model.keras``; score each on ``test`` when there is one."""
    model_path = run_dir / RunFile.BEST_MODEL
    artifacts = export_model(model_path, run_dir, list(formats), quantize=quantize, representative=representative)
    reference = None
    if test is not None and artifacts:
        model = keras.saving.load_model(model_path, compile=False)
        reference = model.predict(test.features.astype("float32"), batch_size=256, verbose=0)
    for artifact in artifacts:
        results: dict = {"command": command}
        line = f"wrote {artifact.path} ({artifact.bytes / 2**20:.2f} MiB, {artifact.quantization or 'float32'})"
        if test is not None:
            try:
                results.update(score(artifact, test.features, test.labels, reference))
            except Exception as exc:  # noqa: BLE001 - a runtime that cannot run the artifact is a finding
                results["score_error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
                say(line + f": WARNING: it does not run in its runtime ({results['score_error']})")
                update_export_report(run_dir / RunFile.EXPORT_REPORT, artifact, results)
                continue
            line += (f": test accuracy {results['test_accuracy']:.4f} on {results['n_test']} images in "
                     f"{results['runtime']} (same class as "
                     f"the Keras model for {results['agreement_with_keras']:.2%}), "
                     f"{results['seconds_per_image_batch1'] * 1000:.3f} ms per image at batch 1, "
                     f"{results['images_per_second_batch256']:,.0f} images/s at batch 256")
        say(line)
        update_export_report(run_dir / RunFile.EXPORT_REPORT, artifact, results)
    return artifacts
