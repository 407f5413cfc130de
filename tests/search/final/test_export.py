"""Deployable artifacts: every format reloaded in a fresh process that imports only its runtime.

One tiny LeNet with augmentation and grayscale on (the layers that break a naive export) is trained
briefly on the ``tiny_data`` images, so its predictions are decisive enough to compare argmaxes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from search.config import EXPORT_FORMATS
from search.final import export as export_module
from search.final.export import Artifact, export_model
from search.final.runtimes import latency, predict_with, score, tflite_ops

ROOT = Path(__file__).resolve().parents[3]
# Every augmentation layer present (mild, so 30 short epochs give decisive predictions: int8 rounds the
# probabilities to steps of 1/256, and near-ties would flip on any model).
VALUES = {
    "filters_0": 4,
    "filters_1": 8,
    "filters_2": 16,
    "filters_3": 16,
    "units_0": 64,
    "units_1": 32,
    "augment": True,
    "aug_rotation": 5.0,
    "aug_translate": 0.05,
    "aug_zoom": 0.05,
    "aug_brightness": 0.1,
    "aug_contrast": 0.1,
    "grayscale": True,
    "learning_rate": 3e-3,
    "label_smoothing": 0.0,
}
N_IMAGES = 200


def _build(seed: int = 0):  # -> keras.Model
    import keras

    import spaces

    keras.utils.set_random_seed(seed)
    return spaces.get_space("lenet").build(spaces.ValuesHyperParameters(dict(VALUES)), (32, 32, 3), 43)


@pytest.fixture(scope="module")
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """(run folder holding best_model.keras, 200 training images, the Keras model's probabilities)."""
    from search.data import load_split

    train = load_split(tiny_data / "train.p")
    images = train.features[:N_IMAGES]
    model = _build()
    model.fit(images.astype("float32"), train.labels[:N_IMAGES], epochs=30, batch_size=32, verbose=0)
    run_dir = tmp_path_factory.mktemp("run")
    model.save(run_dir / "best_model.keras")
    return run_dir, images, model.predict(images.astype("float32"), verbose=0)


@pytest.fixture(scope="module")
def artifacts(trained: tuple[Path, np.ndarray, np.ndarray]) -> dict[str, Artifact]:
    run_dir, images, _ = trained
    written = export_model(run_dir / "best_model.keras", run_dir, EXPORT_FORMATS)
    for quantize in ("float16", "int8"):
        written += export_model(
            run_dir / "best_model.keras", run_dir, ["tflite"], quantize=quantize, representative=images
        )
    return {a.name: a for a in written}


# -- fresh processes: the runtime alone --------------------------------------------------------------
PRELUDE = """
import json, sys
import numpy as np
x = np.load(sys.argv[1]).astype("float32")
"""
RUNTIMES = {
    "onnx": """
import onnxruntime as ort
def run(path):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
""",
    "tflite": """
from ai_edge_litert.interpreter import Interpreter
def run(path):
    interp = Interpreter(model_path=path)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], x.shape)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return interp.get_tensor(out["index"])
""",
    "savedmodel": """
import tensorflow as tf
def run(path):
    loaded = tf.saved_model.load(path)  # kept in a name: the bare function would let its variables go
    return loaded.serve(tf.constant(x)).numpy()
""",
}
EPILOGUE = """
for i, path in enumerate(sys.argv[3:]):
    np.save(f"{sys.argv[2]}/{i}.npy", run(path))
print(json.dumps({m: m in sys.modules for m in ("search", "spaces", "keras", "tensorflow")}))
"""


def _run_fresh(runtime: str, paths: list[Path], images: np.ndarray, folder: Path) -> tuple[dict, list[np.ndarray]]:
    """Run ``paths`` in a new interpreter started in an empty folder, with no project on its path."""
    folder.mkdir()
    np.save(folder / "x.npy", images)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = textwrap.dedent(PRELUDE + RUNTIMES[runtime] + EPILOGUE)
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder / "x.npy"), str(folder), *map(str, paths)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), [np.load(folder / f"{i}.npy") for i in range(len(paths))]


@pytest.mark.parametrize("runtime", ["onnx", "tflite", "savedmodel"])
def test_each_artifact_runs_in_a_fresh_process_without_this_project(
    runtime: str, trained: tuple[Path, np.ndarray, np.ndarray], artifacts: dict[str, Artifact], tmp_path: Path
) -> None:
    _, images, reference = trained
    chosen = [a for a in artifacts.values() if a.format == runtime]
    modules, outputs = _run_fresh(runtime, [a.path for a in chosen], images, tmp_path / "fresh")
    assert not modules["search"] and not modules["spaces"]
    if runtime != "savedmodel":  # ONNX and TFLite files need neither TensorFlow nor Keras
        assert not modules["tensorflow"] and not modules["keras"]  # (importing TensorFlow imports Keras)
    expected = reference.argmax(axis=1)
    for artifact, probs in zip(chosen, outputs):
        assert probs.shape == reference.shape
        agreement = float(np.mean(probs.argmax(axis=1) == expected))
        if artifact.quantization == "int8":
            assert agreement >= 0.95, (artifact.name, agreement)
        else:
            assert agreement == 1.0, (artifact.name, agreement)
            tolerance = 5e-3 if artifact.quantization == "float16" else 1e-4
            assert np.abs(probs - reference).max() < tolerance, artifact.name


def test_tflite_files_have_builtin_ops_only(artifacts: dict[str, Artifact]) -> None:
    for name in ("best_model.tflite", "best_model_float16.tflite", "best_model_int8.tflite"):
        ops = tflite_ops(artifacts[name].path)
        assert "CONV_2D" in ops and not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], (name, ops)
    assert "QUANTIZE" in tflite_ops(artifacts["best_model_int8.tflite"].path)
    assert "DEQUANTIZE" in tflite_ops(artifacts["best_model_float16.tflite"].path)


def test_artifacts_are_recorded_beside_the_model(
    trained: tuple[Path, np.ndarray, np.ndarray], artifacts: dict[str, Artifact]
) -> None:
    run_dir = trained[0]
    assert set(artifacts) == {
        "best_model_savedmodel",
        "best_model.onnx",
        "best_model.tflite",
        "best_model_float16.tflite",
        "best_model_int8.tflite",
    }
    for artifact in artifacts.values():
        assert artifact.path.parent == run_dir and artifact.bytes > 10_000
        assert Artifact.from_json(json.loads(json.dumps(artifact.to_json()))) == artifact
    assert artifacts["best_model.onnx"].bytes == artifacts["best_model.onnx"].path.stat().st_size
    assert (artifacts["best_model_savedmodel"].path / "saved_model.pb").is_file()
    sizes = {q: artifacts[f"best_model{'_' + q if q else ''}.tflite"].bytes for q in ("", "float16", "int8")}
    assert sizes["int8"] < sizes["float16"] < sizes[""]
    assert [a.quantization for a in artifacts.values()] == [None, None, None, "float16", "int8"]
    assert not [p for p in run_dir.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_runtimes_predict_score_and_time(
    trained: tuple[Path, np.ndarray, np.ndarray], artifacts: dict[str, Artifact], tiny_data: Path
) -> None:
    _, images, reference = trained
    for artifact in artifacts.values():
        probs = predict_with(artifact, images[:40], batch_size=16)
        # int8 probabilities come in steps of 1/256, so their sum is only near 1
        atol = 0.05 if artifact.quantization == "int8" else 1e-3
        assert probs.shape == (40, 43) and np.allclose(probs.sum(axis=1), 1.0, atol=atol), artifact.name
    timing = latency(artifacts["best_model.onnx"].path, images[:8], repeats=5)
    assert timing["seconds_per_image_batch1"] > 0 and timing["images_per_second_batch256"] > 0
    labels = reference.argmax(axis=1)
    result = score(artifacts["best_model.tflite"], images, labels, reference, repeats=5)
    assert result["test_accuracy"] == 1.0 and result["agreement_with_keras"] == 1.0
    assert result["runtime"].startswith("ai_edge_litert")


def test_tflite_fallback_converter_when_keras_has_no_litert(
    trained: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, images, reference = trained
    monkeypatch.setattr(export_module, "keras_has_litert", lambda: False)
    [artifact] = export_model(run_dir / "best_model.keras", tmp_path, ["tflite"])
    assert not [op for op in tflite_ops(artifact.path) if op.startswith("Flex")]
    assert (predict_with(artifact, images).argmax(axis=1) == reference.argmax(axis=1)).all()


def test_mixed_precision_model_exports_in_float32(tmp_path: Path) -> None:
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _build(seed=1)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    reference = _build(seed=1)  # the same graph built under float32 here, given the mixed model's weights
    reference.set_weights(model.get_weights())
    assert {layer.dtype_policy.compute_dtype for layer in reference.layers} == {"float32"}
    expected = reference.predict(images.astype("float32"), verbose=0)
    [artifact] = export_model(model, tmp_path, ["onnx"])
    assert np.abs(predict_with(artifact, images) - expected).max() < 1e-4


def test_export_refuses_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tflite format only"):
        export_model(tmp_path / "m.keras", tmp_path, ["onnx"], quantize="float16")
    with pytest.raises(ValueError, match="representative"):
        export_model(tmp_path / "m.keras", tmp_path, ["tflite"], quantize="int8")
    with pytest.raises(ValueError, match="formats"):
        export_model(tmp_path / "m.keras", tmp_path, ["pt2"])


JAX_EXPORT = """
import json, sys
import keras, numpy as np
import spaces
from search.final.export import export_model
model = keras.saving.load_model(sys.argv[1])
x = np.load(sys.argv[2]).astype("float32")
np.save(sys.argv[3] + "/jax.npy", model.predict(x, verbose=0))
written = export_model(model, sys.argv[3], ["savedmodel", "tflite"])  # the formats only TF writes
print(json.dumps({"backend": keras.backend.backend(), "artifacts": [a.to_json() for a in written]}))
"""


@pytest.mark.slow
def test_jax_model_is_exported_through_a_tensorflow_child(
    trained: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    run_dir, images, _ = trained
    np.save(tmp_path / "x.npy", images)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", JAX_EXPORT, str(run_dir / "best_model.keras"), str(tmp_path / "x.npy"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["backend"] == "jax"
    expected = np.load(tmp_path / "jax.npy").argmax(axis=1)
    for data in answer["artifacts"]:
        artifact = Artifact.from_json(data)
        assert artifact.path.parent == tmp_path
        assert (predict_with(artifact, images).argmax(axis=1) == expected).all(), artifact.name


# -- the command ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_export_model_command(trained: tuple[Path, np.ndarray, np.ndarray], tiny_data: Path, tmp_path: Path) -> None:
    import shutil

    from search.config import SearchConfig
    from search.engine.study import load_space, make_storage, open_study

    out = tmp_path / "runs"
    cfg = SearchConfig(data_dir=tiny_data, space="lenet", study="exp", out=out)
    open_study(cfg, make_storage(cfg), "hash", load_space(cfg.space))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "run_search.py"), "export-model", "--study", "exp", "--out", str(out), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=400,
        )

    missing = cli("--format", "onnx")
    assert missing.returncode == 2 and "run retrain first" in missing.stderr
    assert missing.stderr.count("\n") == 1, missing.stderr
    shutil.copy(trained[0] / "best_model.keras", out / "exp" / "best_model.keras")
    done = cli("--format", "tflite", "--quantize", "int8")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote" in done.stdout and "best_model_int8.tflite" in done.stdout
    assert "test accuracy" in done.stdout and "on 172 images in ai_edge_litert" in done.stdout
    report = json.loads((out / "exp" / "export_report.json").read_text())
    entry = report["artifacts"]["best_model_int8.tflite"]
    assert report["model"] == "best_model.keras" and entry["quantization"] == "int8"
    assert entry["n_test"] == 172 and 0 <= entry["test_accuracy"] <= 1 and entry["agreement_with_keras"] >= 0.5
    assert entry["bytes"] == (out / "exp" / "best_model_int8.tflite").stat().st_size
    assert entry["seconds_per_image_batch1"] > 0
