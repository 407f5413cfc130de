"""The ``local_contrast`` preprocessing: what the layer computes, why (lighting drops out), and that a
model holding it saves, runs under every backend and exports to ONNX and int8 TFLite with builtin ops."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from spaces import ValuesHyperParameters, common
from spaces.layers import LocalContrastNormalization, PerImageStandardization

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (32, 32, 3)


@pytest.fixture(autouse=True)
def _fresh_session() -> Any:
    yield
    keras.backend.clear_session()


def textured(n: int = 2, seed: int = 0) -> np.ndarray:
    """Well-lit images with structure at every place (smoothed noise over 40..215), float32 0..255."""
    noise = np.random.default_rng(seed).uniform(0, 1, (n, 36, 36, 3))
    smooth = sum(noise[:, i : i + 32, j : j + 32] for i in range(5) for j in range(5)) / 25
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (40 + 175 * smooth).astype("float32")


def lcn(x: np.ndarray, **kwargs: Any) -> np.ndarray:
    return keras.ops.convert_to_numpy(LocalContrastNormalization(**kwargs)(np.asarray(x, "float32")))


def test_output_shape_dtype_and_scale() -> None:
    x = textured(3)
    y = lcn(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert abs(float(y.mean())) < 0.05 and 0.5 < float(y.std()) < 1.5
    gray = lcn(x[..., :1])
    assert gray.shape == (3, 32, 32, 1)
    with pytest.raises(ValueError, match="odd"):
        LocalContrastNormalization(size=4)
    with pytest.raises(ValueError, match="floor_share"):
        LocalContrastNormalization(floor_share=2.0)


def test_dark_low_contrast_photo_normalises_like_its_brightened_version() -> None:
    """The point of the layer: lighting and contrast drop out, uint8 rounding and all."""
    bright = textured(2)
    dark = np.round(bright * 0.12 + 6).astype(np.uint8)  # 11..32: a dim, washed-out photo
    stretched = (dark.astype("float32") - 6) * 7.5  # the same photo contrast-stretched to ~40..195
    a, b = lcn(dark), lcn(stretched)
    assert np.abs(a - b).max() < 1e-3
    # and like the well-lit original, up to what rounding to 21 grey levels lost
    original = lcn(bright)
    assert np.corrcoef(original.ravel(), a.ravel())[0, 1] > 0.97
    assert abs(float(a.std()) / float(original.std()) - 1) < 0.05


def test_a_small_floor_share_evens_out_a_shadow_over_half_the_sign() -> None:
    """What ``floor_share`` trades: below 1 a shadowed half is lifted towards the lit half's contrast
    (the default keeps the floor at the image's mean contrast, which int8 quantises far better)."""
    x = textured(1, seed=3)
    x[:, :, :16] *= 0.2  # the left half in shadow: a 5x contrast drop

    def ratio(y: np.ndarray) -> float:  # inner columns only, away from the shadow's edge
        return float(y[:, :, 2:12].std() / y[:, :, 20:30].std())

    standardised = ratio(keras.ops.convert_to_numpy(PerImageStandardization()(x)))
    assert standardised < 0.3
    assert ratio(lcn(x, floor_share=0.1)) > 0.5 > ratio(lcn(x))
    assert ratio(lcn(x)) > standardised  # the default still helps a little


def test_flat_images_give_finite_zeros() -> None:
    for value in (0.0, 7.0, 255.0):
        y = lcn(np.full((1, *SHAPE), value))
        assert np.all(np.isfinite(y)) and np.abs(y).max() < 1e-3, value
    # a flat region inside a textured image is not blown up into noise
    x = textured(1)
    x[:, 8:24, 8:24] = 120.0
    y = lcn(x)
    assert np.abs(y[:, 12:20, 12:20]).max() < 1e-2


def test_mixed_precision_keeps_float32_statistics() -> None:
    x = textured(2)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = LocalContrastNormalization()
        y = keras.ops.convert_to_numpy(layer(x))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert y.dtype == np.float16 and np.all(np.isfinite(y))  # 255^2 sums would overflow float16
    np.testing.assert_allclose(y.astype("float32"), lcn(x), atol=1e-2)


def test_front_end_choice_builds_the_layer_and_keeps_the_default() -> None:
    hp = ValuesHyperParameters()
    p = common.front_end_params(hp)
    assert p["preprocessing"] == "standardize" and p["local_contrast"] is False
    # Its own parameter: the preprocessing choices of studies made before it are unchanged.
    assert list(hp.space["preprocessing"].values) == ["standardize", "scale"]
    p = common.front_end_params(ValuesHyperParameters({"local_contrast": True, "grayscale": True, "augment": False}))
    assert p["preprocessing"] is None  # inactive: the local step replaces the global normalisation
    inputs = keras.Input(shape=SHAPE, dtype="float32")
    front = keras.Model(inputs, common.apply_front_end(p, inputs))
    assert isinstance(front.layers[-1], LocalContrastNormalization) and not front.weights
    assert front.output.shape == (None, 32, 32, 1)


def tiny_model(seed: int = 0) -> keras.Model:
    """The front end with ``local_contrast`` and a Dense head: nothing else to blame in an export."""
    keras.utils.set_random_seed(seed)
    p = common.front_end_params(ValuesHyperParameters({"local_contrast": True, "augment": False}))
    inputs = keras.Input(shape=SHAPE, dtype="float32", name="pixels")
    x = keras.layers.Flatten()(common.apply_front_end(p, inputs))
    model = keras.Model(inputs, common.classifier(x, 8), name="lcn_tiny")
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def fitted(n: int = 48) -> tuple[keras.Model, np.ndarray]:
    """Trained to decisive predictions: int8 rounds probabilities, and near-ties would flip on any model."""
    x = np.round(textured(n, seed=5)).astype(np.uint8)
    model = tiny_model()
    model.fit(x.astype("float32"), np.arange(n) % 8, epochs=40, batch_size=16, verbose=0)
    return model, x


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model, x = fitted(16)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    layer = next(la for la in loaded.layers if isinstance(la, LocalContrastNormalization))
    assert (layer.size, layer.sigma, layer.floor_share) == (7, 2.0, 1.0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_exports_to_onnx_and_int8_tflite_with_builtin_ops(tmp_path: Path) -> None:
    from search.final.export import export_model
    from search.final.runtimes import predict_with, tflite_ops

    model, x = fitted()
    reference = model.predict(x.astype("float32"), verbose=0)
    written = export_model(model, tmp_path, ["onnx", "tflite"])
    written += export_model(model, tmp_path, ["tflite"], quantize="int8", representative=x)
    for artifact in written:
        probs = predict_with(artifact, x)
        agreement = float(np.mean(probs.argmax(axis=1) == reference.argmax(axis=1)))
        if artifact.quantization == "int8":
            assert agreement >= 0.9, (artifact.name, agreement)
        else:
            assert agreement == 1.0 and np.abs(probs - reference).max() < 1e-4, artifact.name
        if artifact.format == "tflite":
            ops = tflite_ops(artifact.path)
            assert "DEPTHWISE_CONV_2D" in ops and "RSQRT" in ops, ops
            assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], (artifact.name, ops)
            assert "DIV" not in ops, ops


OTHER_BACKEND = """
import json, sys
import keras, numpy as np
import spaces
model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
print(json.dumps({"backend": keras.backend.backend()}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_same_output_under_other_backends(backend: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    model, x = fitted(16)
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x.astype("float32"))
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            OTHER_BACKEND,
            str(tmp_path / "m.keras"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["backend"] == backend
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0), atol=1e-5)
