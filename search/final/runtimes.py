"""Run an exported artifact in the runtime it was made for, and time it there.

What a deployment sees is the artifact in its runtime, not the Keras model: ONNX in onnxruntime,
TFLite in the LiteRT interpreter (``ai-edge-litert``; TensorFlow's ``tf.lite.Interpreter`` only when
that package is missing), SavedModel in ``tf.saved_model.load``. Nothing here imports Keras or the
model code. Inputs are uint8 (or float) images holding 0..255 pixels; outputs are probabilities.
"""

from __future__ import annotations

import importlib.metadata
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .export import Artifact

Runner = Callable[[np.ndarray], np.ndarray]
BATCH = 256


def format_of(artifact: Artifact | Path | str) -> str:
    if isinstance(artifact, Artifact):
        return artifact.format
    path = Path(artifact)
    if path.suffix in (".onnx", ".tflite"):
        return path.suffix[1:]
    if path.is_dir() and (path / "saved_model.pb").exists():
        return "savedmodel"
    raise ValueError(f"{path}: not an .onnx, .tflite or SavedModel folder")


def _path(artifact: Artifact | Path | str) -> Path:
    return artifact.path if isinstance(artifact, Artifact) else Path(artifact)


def tflite_interpreter_class() -> tuple[type, str]:
    """LiteRT's interpreter, or TensorFlow's (deprecated there) when ai-edge-litert is missing."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, f"ai_edge_litert {importlib.metadata.version('ai-edge-litert')}"
    except ImportError:
        warnings.warn("ai-edge-litert is not installed: running TFLite with tf.lite.Interpreter instead", stacklevel=2)
        import tensorflow as tf

        return tf.lite.Interpreter, f"tf.lite.Interpreter (tensorflow {tf.__version__})"


def load_runner(artifact: Artifact | Path | str) -> tuple[Runner, str]:
    """A function from one batch of images to probabilities, and the runtime's name and version."""
    fmt, path = format_of(artifact), _path(artifact)
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return (lambda x: session.run(None, {name: np.asarray(x, "float32")})[0]), f"onnxruntime {ort.__version__}"
    if fmt == "tflite":
        return _tflite_runner(path)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))

    def run_savedmodel(x: np.ndarray) -> np.ndarray:
        # ``loaded`` is used here, not just its function: the function alone lets the variables go.
        serve = loaded.serve if hasattr(loaded, "serve") else loaded.signatures["serving_default"]
        out = serve(tf.constant(np.asarray(x, "float32")))
        return (next(iter(out.values())) if isinstance(out, dict) else out).numpy()

    return run_savedmodel, f"tensorflow {tf.__version__}"


def _tflite_runner(path: Path) -> tuple[Runner, str]:
    interpreter_class, runtime = tflite_interpreter_class()
    interp = interpreter_class(model_path=str(path), num_threads=os.cpu_count() or 1)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    shape: list[tuple[int, ...]] = [()]

    def run_tflite(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, "float32")
        if shape[0] != x.shape:
            interp.resize_tensor_input(inp["index"], x.shape)
            interp.allocate_tensors()
            shape[0] = x.shape
        if inp["dtype"] in (np.int8, np.uint8):  # a full-integer file with integer input
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale + zero), *_limits(inp["dtype"])).astype(inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        y = interp.get_tensor(out["index"])
        if out["dtype"] in (np.int8, np.uint8):
            scale, zero = out["quantization"]
            y = (y.astype("float32") - zero) * scale
        return np.array(y, "float32")

    return run_tflite, runtime


def _limits(dtype: Any) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def tflite_ops(path: Path | str) -> set[str]:
    """Operator names in a .tflite file (``Flex...`` ones would need TensorFlow's select-ops runtime)."""
    interpreter_class, _ = tflite_interpreter_class()
    return {op["op_name"] for op in interpreter_class(model_path=str(path))._get_ops_details()}


def predict_with(
    artifact: Artifact | Path | str, images: np.ndarray, batch_size: int = BATCH, runner: Runner | None = None
) -> np.ndarray:
    """Probabilities of ``images`` from the artifact run in its own runtime."""
    run = runner or load_runner(artifact)[0]
    images = np.asarray(images)
    return np.concatenate(
        [run(images[i : i + batch_size]) for i in range(0, len(images), batch_size)] or [np.zeros((0, 0), "float32")]
    )


def latency(
    artifact: Artifact | Path | str, images: np.ndarray, repeats: int = 50, runner: Runner | None = None
) -> dict[str, float]:
    """Median seconds per image at batch 1 over ``repeats`` single-image calls, and images per second
    at batch 256 (median of a few calls; the images are tiled up to 256)."""
    run = runner or load_runner(artifact)[0]
    images = np.asarray(images, "float32")
    single = images[:1]
    for _ in range(3):
        run(single)
    times = []
    for i in range(repeats):
        one = images[i % len(images)][None]
        start = time.perf_counter()
        run(one)
        times.append(time.perf_counter() - start)
    batch = np.resize(images, (BATCH, *images.shape[1:]))
    run(batch)
    batch_times = []
    for _ in range(max(3, repeats // 10)):
        start = time.perf_counter()
        run(batch)
        batch_times.append(time.perf_counter() - start)
    return {
        "seconds_per_image_batch1": statistics.median(times),
        "images_per_second_batch256": BATCH / statistics.median(batch_times),
    }


def score(
    artifact: Artifact | Path | str,
    images: np.ndarray,
    labels: np.ndarray,
    reference: np.ndarray | None = None,
    repeats: int = 50,
) -> dict[str, Any]:
    """Accuracy of the artifact in its runtime, its argmax agreement with ``reference`` (the Keras
    model's probabilities on the same images) and its latency: what ``export_report.json`` keeps."""
    run, runtime = load_runner(artifact)
    predicted = predict_with(artifact, images, runner=run).argmax(axis=1)
    result: dict[str, Any] = {
        "runtime": runtime,
        "n_test": int(len(labels)),
        "test_accuracy": float(np.mean(predicted == np.asarray(labels))),
    }
    if reference is not None:
        result["agreement_with_keras"] = float(np.mean(predicted == np.asarray(reference).argmax(axis=1)))
    result.update(latency(artifact, images[:BATCH], repeats=repeats, runner=run))
    return result
