"""Deployable artifacts of the final model: SavedModel, ONNX and TFLite that load without this package.

Keras' exporters trace ``model.__call__`` without ``training``; the augmentation layers default to
``training=True``, so the traced graph would augment every input: non-deterministic output, and
random / image-transform ops that ONNX and the TFLite builtins lack. Every artifact is therefore
exported from an inference wrapper that calls the model with ``training=False`` (and in float32:
Keras' ONNX export needs a float32 policy). Artifacts take float32 images holding raw 0..255 pixels
(NHWC) and return softmax probabilities; preprocessing is inside them.

SavedModel and TFLite are written by TensorFlow only, so a model under another backend (JAX,
PyTorch) is reloaded from its ``.keras`` file in a child process with ``KERAS_BACKEND=tensorflow``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EXPORT_FORMATS
from ..errors import UserError
from ..schema import RunFile, atomic_path, private_tmp

QUANTIZATIONS = ("float16", "int8")
REPRESENTATIVE_IMAGES = 200  # post-training int8 calibration: enough to fix the activation ranges
_STEM = Path(RunFile.BEST_MODEL).stem


class ExportError(UserError):
    """A model that cannot be written in a format (an op the format lacks): one line for the user."""


@dataclass(frozen=True)
class Artifact:
    """One written artifact: what it is, where, how big (a SavedModel counts all its files)."""

    format: str  # savedmodel | onnx | tflite
    path: Path
    bytes: int
    quantization: str | None = None  # None (float32) | float16 | int8 (full integer, float32 in/out)

    @property
    def name(self) -> str:
        return self.path.name

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "path": str(self.path), "bytes": self.bytes, "quantization": self.quantization}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        return cls(data["format"], Path(data["path"]), int(data["bytes"]), data.get("quantization"))


def artifact_name(fmt: str, quantize: str | None = None) -> str:
    """File name beside ``best_model.keras``; quantised TFLite files get their own names so that the
    float32, float16 and int8 variants can sit side by side."""
    if fmt == "savedmodel":
        return f"{_STEM}_savedmodel"
    return f"{_STEM}{'_' + quantize if quantize else ''}.{fmt}"


def export_model(
    model_path_or_model: Any,
    out_dir: Path | str,
    formats: Sequence[str],
    *,
    quantize: str | None = None,
    representative: np.ndarray | None = None,
) -> list[Artifact]:
    """Write ``formats`` of the model into ``out_dir``; ``quantize`` applies to the TFLite artifact,
    ``representative`` (uint8 images, ~200 from ``train.p``) calibrates ``int8``."""
    formats = _checked(formats, quantize, representative)
    if not formats:  # ``SearchConfig.export`` may be empty: nothing asked, nothing written
        return []
    out_dir = Path(out_dir)
    import keras

    if keras.backend.backend() != "tensorflow":
        return _export_in_tensorflow_child(model_path_or_model, out_dir, formats, quantize, representative)
    served = inference_model(_load(model_path_or_model))
    writers: dict[str, Callable[..., Artifact]] = {"savedmodel": _savedmodel, "onnx": _onnx, "tflite": _tflite}
    return [writers[fmt](served, out_dir, quantize if fmt == "tflite" else None, representative) for fmt in formats]


def _checked(formats: Sequence[str], quantize: str | None, representative: np.ndarray | None) -> list[str]:
    formats = list(dict.fromkeys([formats] if isinstance(formats, str) else formats))
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad:
        raise ValueError(f"formats must be some of {', '.join(EXPORT_FORMATS)}, got {list(formats)}")
    if quantize is not None:
        if quantize not in QUANTIZATIONS:
            raise ValueError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
        if "tflite" not in formats:
            raise ValueError("quantize applies to the tflite format only")
    if quantize == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("int8 quantisation needs representative images (e.g. ~200 from train.p)")
        if np.asarray(representative).ndim != 4:
            raise ValueError(f"representative images must be (N, H, W, C), got {np.shape(representative)}")
    return formats


def _load(model_path_or_model: Any) -> Any:
    if not isinstance(model_path_or_model, (str, Path)):
        return model_path_or_model
    import keras

    import spaces  # noqa: F401  (registers the custom layers the .keras file names)

    return keras.saving.load_model(model_path_or_model, compile=False)


def inference_model(model: Any) -> Any:
    """A float32 model whose every call runs ``model(x, training=False)``: the graph to export."""
    import keras

    if len(model.inputs) != 1:
        raise ExportError(f"export expects a model with one image input, {model.name!r} has {len(model.inputs)}")
    model = float32_copy(model)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    inputs = keras.Input(shape=shape, dtype="float32", name="pixels")
    served = keras.Model(inputs, model(inputs, training=False), name=f"{model.name}_inference")
    served(np.zeros((1, *shape), "float32"))  # Keras' ONNX export refuses a model never called
    return served


def float32_copy(model: Any) -> Any:
    """``model`` itself when it computes in float32, else the same graph and weights rebuilt with a
    float32 policy (mixed-precision variables are float32 already, so the weights carry over)."""
    import keras

    if all(layer.dtype_policy.compute_dtype == "float32" for layer in _layers(model)):
        return model

    def to_float32(node: Any) -> Any:
        if isinstance(node, dict):
            config = node.get("config")
            if node.get("class_name") == "DTypePolicy" and str((config or {}).get("name")).startswith("mixed_"):
                return {**node, "config": {**config, "name": "float32"}}
            return {
                k: "float32" if k == "dtype" and str(v).startswith("mixed_") else to_float32(v) for k, v in node.items()
            }
        return [to_float32(v) for v in node] if isinstance(node, list) else node

    config = keras.saving.serialize_keras_object(model)
    copy = keras.saving.deserialize_keras_object(to_float32(config))
    copy.set_weights(model.get_weights())
    return copy


def _layers(model: Any) -> Iterator[Any]:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)


# -- writers ----------------------------------------------------------------------------------------
def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@contextmanager
def _atomic_dir(path: Path) -> Iterator[Path]:
    """A private folder to fill (``private_tmp``: created exclusively, under an unpredictable name); on
    success it replaces ``path`` (an old folder is moved aside first, so ``path`` is the old or the new
    artifact, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_tmp(path, folder=True)
    aside: Path | None = None
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            aside = private_tmp(path, folder=True)
            os.replace(path, aside)  # over the empty folder that reserved the name
        elif os.path.lexists(path):
            os.unlink(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def _quiet_converters() -> Iterator[None]:
    """tf2onnx and the TFLite converter log every graph rewrite as a warning; keep errors only."""
    loggers = [logging.getLogger(name) for name in ("tf2onnx", "tensorflow", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _savedmodel(served: Any, out_dir: Path, quantize: str | None, representative: Any) -> Artifact:
    path = out_dir / artifact_name("savedmodel")
    with _atomic_dir(path) as tmp, _quiet_converters():
        served.export(str(tmp), format="tf_saved_model", verbose=False)
    return Artifact("savedmodel", path, _size(path))


def _onnx(served: Any, out_dir: Path, quantize: str | None, representative: Any) -> Artifact:
    path = out_dir / artifact_name("onnx")
    try:
        with atomic_path(path) as tmp, _quiet_converters():
            served.export(str(tmp), format="onnx", verbose=False)
    except Exception as exc:  # tf2onnx raises plain exceptions for unsupported ops
        raise ExportError(f"cannot convert the model to ONNX: {_first_line(exc)}") from exc
    return Artifact("onnx", path, _size(path))


def keras_has_litert() -> bool:
    """Whether this Keras exports ``format="litert"`` (Keras >= 3.12); older ones take the fallback."""
    try:
        return importlib.util.find_spec("keras.src.export.litert") is not None
    except ModuleNotFoundError:
        return False


def tflite_settings(quantize: str | None, representative: np.ndarray | None) -> dict[str, Any]:
    """Converter settings: builtin ops only (no Flex ops, so the file runs on the plain LiteRT runtime);
    float16 weights; or full-integer int8 inside with float32 input and output."""
    import tensorflow as tf

    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize is None:
        return {"target_spec": {"supported_ops": builtins}}
    if quantize == "float16":
        return {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_ops": builtins, "supported_types": [tf.float16]},
        }
    images = np.asarray(representative)[:REPRESENTATIVE_IMAGES].astype("float32")

    def samples() -> Iterator[list[np.ndarray]]:
        for i in range(len(images)):
            yield [images[i : i + 1]]

    return {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "representative_dataset": samples,
        "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
    }


def _configure(converter: Any, settings: dict[str, Any]) -> None:
    for key, value in settings.items():
        if key == "target_spec":
            for spec_key, spec_value in value.items():
                setattr(converter.target_spec, spec_key, spec_value)
        else:
            setattr(converter, key, value)


def _tflite(served: Any, out_dir: Path, quantize: str | None, representative: np.ndarray | None) -> Artifact:
    path = out_dir / artifact_name("tflite", quantize)
    settings = tflite_settings(quantize, representative)
    try:
        with atomic_path(path) as tmp, _quiet_converters():
            if keras_has_litert():
                served.export(str(tmp), format="litert", verbose=False, **settings)
            else:
                tmp.write_bytes(_convert_from_savedmodel(served, settings))
    except Exception as exc:  # the converter's ConverterError names the ops that are not builtin
        raise ExportError(f"cannot convert the model to TFLite with builtin ops only: {_first_line(exc)}") from exc
    return Artifact("tflite", path, _size(path), quantize)


def _convert_from_savedmodel(served: Any, settings: dict[str, Any]) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        served.export(folder, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        _configure(converter, settings)
        return converter.convert()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() and "op" in line.lower()]
    return (errors or lines or [type(exc).__name__])[0][:300]


# -- the command's inputs and report -----------------------------------------------------------------
def representative_images(data_dir: Path | str, n: int = REPRESENTATIVE_IMAGES, seed: int = 0) -> np.ndarray:
    """``n`` seeded random images of the folder's ``train.p``: the int8 calibration set."""
    from ..data import find_split_file, load_split

    path = find_split_file(Path(data_dir), "train") if Path(data_dir).is_dir() else None
    if path is None:
        raise UserError(
            f"no train.p in {data_dir}: int8 quantisation calibrates on training images (pass --data-dir DIR)"
        )
    features = load_split(path).features
    pick = np.random.default_rng(seed).choice(len(features), size=min(n, len(features)), replace=False)
    return features[np.sort(pick)]


def update_export_report(path: Path | str, artifact: Artifact, results: dict[str, Any]) -> Path:
    """Add or replace the artifact's entry in ``export_report.json`` (other artifacts' entries stay)."""
    import time

    from ..schema import write_json

    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    if not isinstance(report, dict) or not isinstance(report.get("artifacts"), dict):
        report = {"artifacts": {}}
    report["model"] = RunFile.BEST_MODEL
    report["artifacts"][artifact.name] = {
        **artifact.to_json(),
        "path": artifact.name,
        **results,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return write_json(path, report)


# -- other backends: a TensorFlow child process -----------------------------------------------------
def _export_in_tensorflow_child(
    model: Any, out_dir: Path, formats: list[str], quantize: str | None, representative: np.ndarray | None
) -> list[Artifact]:
    with tempfile.TemporaryDirectory() as folder:
        if isinstance(model, (str, Path)):
            model_path = Path(model).resolve()
        else:
            model_path = Path(folder) / "model.keras"
            model.save(model_path)
        rep_path = None
        if representative is not None:
            rep_path = Path(folder) / "representative.npy"
            np.save(rep_path, np.asarray(representative))
        request = {
            "model": str(model_path),
            "out_dir": str(out_dir.resolve()),
            "formats": formats,
            "quantize": quantize,
            "representative": str(rep_path) if rep_path else None,
        }
        root = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
        }
        done = subprocess.run(
            [sys.executable, "-m", "search.final.export", json.dumps(request)], env=env, capture_output=True, text=True
        )
    last = done.stdout.strip().splitlines()[-1:] or [""]
    try:
        answer = json.loads(last[0])
    except json.JSONDecodeError:
        answer = {}
    if "error" in answer:
        raise ExportError(answer["error"])
    if done.returncode != 0 or "artifacts" not in answer:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"TensorFlow export process failed (exit {done.returncode}):\n{tail}")
    return [Artifact.from_json(a) for a in answer["artifacts"]]


def _child_main(request_text: str) -> int:
    request = json.loads(request_text)
    rep = np.load(request["representative"]) if request.get("representative") else None
    try:
        artifacts = export_model(
            request["model"],
            request["out_dir"],
            request["formats"],
            quantize=request.get("quantize"),
            representative=rep,
        )
    except ExportError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps({"artifacts": [a.to_json() for a in artifacts]}))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
