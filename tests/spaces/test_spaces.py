"""Tests for the search spaces: exact tutorial models, complete points, every random point builds.

Runs on CPU in about a minute; no data files needed (random uint8 images stand in for GTSRB).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import keras
import numpy as np
import pytest

import spaces
from spaces import SPACES, ValuesHyperParameters, cnn, combined, common, describe_space, get_space, lenet
from spaces.hp import ParamSpec
from spaces.layers import SparseLabelSmoothingCrossentropy

SHAPE = (32, 32, 3)
N_CLASSES = 43


@pytest.fixture(autouse=True)
def _fresh_session() -> Any:
    yield
    keras.backend.clear_session()


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *SHAPE), dtype=np.uint8)


def labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, N_CLASSES, size=(n,), dtype=np.uint8)


def build(module: ModuleType, values: dict[str, Any]) -> tuple[keras.Model, ValuesHyperParameters]:
    hp = ValuesHyperParameters(values)
    return module.build(hp, SHAPE, N_CLASSES), hp


# -- random points ------------------------------------------------------------------------------------
def draw(spec: ParamSpec, rng: np.random.Generator) -> Any:
    """A random legal value for one declared parameter."""
    if spec.kind in ("choice", "boolean"):
        return spec.values[int(rng.integers(len(spec.values)))]
    if spec.kind == "fixed":
        return spec.default
    lo, hi = float(spec.min_value), float(spec.max_value)  # type: ignore[arg-type]
    grid = spec.grid()
    if grid:
        return grid[int(rng.integers(len(grid)))]
    if spec.step:
        v = lo + spec.step * int(rng.integers(int(round((hi - lo) / spec.step)) + 1))
        return int(v) if spec.kind == "int" else round(v, 10)
    if spec.kind == "int":
        return int(rng.integers(int(lo), int(hi) + 1))
    if spec.sampling == "log":
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return float(rng.uniform(lo, hi))


def random_point(module: ModuleType, rng: np.random.Generator) -> dict[str, Any]:
    """Draw every active parameter, re-declaring until conditional ones have resolved."""
    values: dict[str, Any] = {}
    while True:
        hp = ValuesHyperParameters(values)
        module.declare(hp)
        new = [name for name in hp.values if name not in values]
        if not new:
            return {k: v for k, v in values.items() if k in hp.values}
        for name in new:
            values[name] = draw(hp.space[name], rng)


# -- exact tutorial models --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "point", "count"),
    [
        (cnn, "tutorial", 928_171),
        (lenet, "tutorial", 657_235),
        (combined, "cnn_tutorial", 928_171),
        (combined, "lenet_tutorial", 657_235),
    ],
)
def test_tutorial_parameter_counts(module: ModuleType, point: str, count: int) -> None:
    model, _ = build(module, module.POINTS[point])
    assert model.count_params() == count


@pytest.mark.parametrize(("module", "count"), [(cnn, 928_171), (lenet, 657_235)])
def test_front_end_adds_no_parameters(module: ModuleType, count: int) -> None:
    point = module.POINTS["tutorial"]
    counts = set()
    for front in (
        {},
        {
            "augment": True,
            "aug_rotation": 20.0,
            "aug_translate": 0.2,
            "aug_zoom": 0.2,
            "aug_brightness": 0.4,
            "aug_contrast": 0.4,
        },
        {"preprocessing": "standardize"},
    ):
        model, _ = build(module, {**point, **front})
        counts.add(model.count_params())
        keras.backend.clear_session()
    assert counts == {count}


def test_front_end_layers_have_no_weights() -> None:
    model, _ = build(cnn, {**cnn.POINTS["strong"], "grayscale": True})
    first_conv = next(i for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.Conv2D))
    front = model.layers[1:first_conv]
    assert {type(layer).__name__ for layer in front} >= {
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
        "RandomBrightness",
        "RandomContrast",
        "Grayscale",
        "PerImageStandardization",
    }
    assert all(not layer.weights for layer in front)
    assert model.layers[first_conv].kernel.shape[2] == 1  # grayscale feeds one channel


def test_augmentation_only_in_training() -> None:
    p = common.front_end_params(ValuesHyperParameters({"preprocessing": "scale", "augment": True}))
    inputs = keras.Input(shape=SHAPE, dtype="float32")
    front = keras.Model(inputs, common.apply_front_end(p, inputs))
    x = images(8).astype("float32")
    expected = x / 127.5 - 1.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(front(x, training=False)), expected, atol=1e-5)
    augmented = keras.ops.convert_to_numpy(front(x, training=True))
    assert augmented.shape == x.shape and not np.allclose(augmented, expected, atol=1e-3)


def test_standardize_and_grayscale_layers() -> None:
    x = images(4).astype("float32")
    y = keras.ops.convert_to_numpy(spaces.layers.PerImageStandardization()(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(1, 2, 3)), 1.0, atol=1e-3)
    flat = keras.ops.convert_to_numpy(spaces.layers.PerImageStandardization()(np.full((1, *SHAPE), 7.0)))
    assert np.all(np.isfinite(flat)) and np.allclose(flat, 0.0)
    g = keras.ops.convert_to_numpy(spaces.layers.Grayscale()(x))
    np.testing.assert_allclose(g[..., 0], x @ np.array([0.299, 0.587, 0.114]), rtol=1e-5)


# -- points ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SPACES))
def test_points_are_complete(name: str) -> None:
    module = get_space(name)
    # The strongest known points run first (the first good model early); every space has the tutorial's.
    has_cnn = "cnn" in name or name == "all"
    first = ("lean2", "lean") if has_cnn else ("tutorial",)
    assert [point.rsplit("_", 1)[-1] for point in list(module.POINTS)[: len(first)]] == list(first)
    if has_cnn:  # the strong net, slower for less at short budgets, runs last
        assert list(module.POINTS)[-1].endswith("strong")
    assert any(point.endswith("tutorial") for point in module.POINTS)
    for point, values in module.POINTS.items():
        hp = ValuesHyperParameters(values)
        module.declare(hp)
        defaulted = set(hp.values) - set(values)
        inactive = set(values) - set(hp.values)
        assert not defaulted, f"{name}:{point} falls back to defaults for {sorted(defaulted)}"
        assert not inactive, f"{name}:{point} gives inactive parameters {sorted(inactive)}"
        for key, value in values.items():
            spec = hp.space[key]
            if spec.kind in ("choice", "boolean", "fixed"):
                assert value in spec.values, f"{name}:{point} {key}={value!r}"
            else:
                assert spec.min_value <= value <= spec.max_value, f"{name}:{point} {key}={value!r}"
        assert module.family_of(values) in ("cnn", "lenet")


def test_point_families_and_combined_points() -> None:
    assert {"tutorial", "strong", "lean", "lean2"} <= set(cnn.POINTS) and "tutorial" in lenet.POINTS
    assert {"cnn_tutorial", "lenet_tutorial", "cnn_strong", "cnn_lean", "cnn_lean2"} <= set(combined.POINTS)
    lean, _ = build(cnn, cnn.POINTS["lean"])
    lean2, _ = build(cnn, cnn.POINTS["lean2"])
    assert (lean.count_params(), lean2.count_params()) == (161_259, 375_211)  # as documented in spaces/cnn.py
    assert combined.family_of(combined.POINTS["lenet_tutorial"]) == "lenet"
    assert cnn.family_of({}) == "cnn" and lenet.family_of({}) == "lenet"
    strong, _ = build(cnn, cnn.POINTS["strong"])
    assert sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in strong.layers) == 3
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in strong.layers)
    assert strong.count_params() <= cnn.PARAM_CEILING
    assert common.default_point(cnn.declare) == cnn.POINTS["strong"]  # documented: strong is the default
    assert common.default_point(lenet.declare) == lenet.POINTS["modern"]


# -- every point builds ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "n"), [("cnn", 50), ("lenet", 50), ("all", 30)])
def test_random_points_build_and_predict(name: str, n: int) -> None:
    module = get_space(name)
    rng = np.random.default_rng(20240607)
    x = images(2)
    seen_families = set()
    for _ in range(n):
        values = random_point(module, rng)
        model, hp = build(module, values)
        assert set(hp.values) == set(values)
        assert model.count_params() <= module.PARAM_CEILING, values
        probs = keras.ops.convert_to_numpy(model(x, training=False))
        assert probs.shape == (2, N_CLASSES)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
        seen_families.add(module.family_of(values))
        keras.backend.clear_session()
    assert seen_families == ({"cnn", "lenet"} if name == "all" else {name})


def _largest_cnn_points() -> list[dict[str, Any]]:
    big = {
        "convs_per_block": 2,
        "kernel_size": 5,
        "head": "flatten",
        "batch_norm": False,
        "dense_layers": 2,
        "units_0": 256,
        "units_1": 256,
    }
    return [
        {**big, "conv_blocks": b, "padding": pad, **{f"filters_{i}": cnn.FILTER_RANGES[i][1] for i in range(b)}}
        for b in range(1, cnn.MAX_BLOCKS + 1)
        for pad in ("same", "valid")
    ]


def test_param_ceilings_hold_for_the_largest_layouts() -> None:
    for values in _largest_cnn_points():
        model, _ = build(cnn, values)
        assert model.count_params() <= cnn.PARAM_CEILING, values
        keras.backend.clear_session()
    largest_lenet = {
        **{f"filters_{i}": hi for i, (_, hi, _) in enumerate(lenet.FILTERS)},
        **{f"kernel_{i}": 5 for i in range(4)},
        **{f"padding_{i}": "same" for i in range(4)},
        "pool_3": False,
        "units_0": 384,
        "units_1": 192,
        "batch_norm": False,
    }
    model, _ = build(lenet, largest_lenet)
    assert model.count_params() <= lenet.PARAM_CEILING
    assert combined.PARAM_CEILING == max(cnn.PARAM_CEILING, lenet.PARAM_CEILING) <= 4_000_000


def test_defaults_build_a_reasonable_model() -> None:
    for module in (cnn, lenet, combined):
        model, hp = build(module, {})
        assert 100_000 < model.count_params() <= module.PARAM_CEILING
        assert hp.values["augment"] is True
        keras.backend.clear_session()


# -- training settings ------------------------------------------------------------------------------------------
def test_training_settings_and_lr_callback() -> None:
    default = common.training_settings({})
    assert default == common.TrainingSettings(batch_size=64, learning_rate=1e-3, lr_schedule="cosine")
    tut = common.training_settings(cnn.POINTS["tutorial"])
    assert tut.batch_size == 32 and tut.lr_schedule == "constant"
    assert common.lr_callback(tut, 10) is None
    assert common.training_settings(combined.POINTS["cnn_strong"]) == common.training_settings(cnn.POINTS["strong"])
    cb = common.lr_callback(common.TrainingSettings(64, 0.01, "cosine"), epochs=4)
    assert isinstance(cb, keras.callbacks.LearningRateScheduler)
    lrs = [cb.schedule(e, 0.01) for e in range(4)]
    assert lrs[0] == pytest.approx(0.01) and all(a > b > 0 for a, b in zip(lrs, lrs[1:]))
    # A shorter horizon (a time cap that pays for 2 of the 4 epochs) anneals sooner.
    short = common.lr_callback(common.TrainingSettings(64, 0.01, "cosine"), epochs=4, horizon=lambda epoch: 2)
    assert short.schedule(1, 0.01) == pytest.approx(common.cosine_lr(0.01, 1, 2))
    assert short.schedule(1, 0.01) < lrs[1]
    with pytest.raises(ValueError, match="lr_schedule"):
        common.lr_callback(common.TrainingSettings(64, 0.01, "step"), epochs=4)


@pytest.mark.parametrize("optimizer", common.OPTIMIZERS)
def test_optimizers(optimizer: str) -> None:
    p = common.training_params(ValuesHyperParameters({"optimizer": optimizer, "weight_decay": 1e-3}))
    opt = common.make_optimizer(p)
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(1e-3)
    assert (opt.weight_decay is not None and opt.weight_decay > 0) == (optimizer != "adam")


def test_label_smoothing_loss_matches_keras() -> None:
    y = np.array([0, 3, 2], dtype=np.uint8)
    rng = np.random.default_rng(1)
    p = rng.random((3, 5)).astype("float32")
    p /= p.sum(axis=1, keepdims=True)
    plain = keras.losses.SparseCategoricalCrossentropy()(y, p)
    np.testing.assert_allclose(SparseLabelSmoothingCrossentropy(0.0)(y, p), plain, rtol=1e-5)
    smooth = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(np.eye(5)[y], p)
    np.testing.assert_allclose(SparseLabelSmoothingCrossentropy(0.2)(y.reshape(-1, 1), p), smooth, rtol=1e-5)
    loss = common.make_loss({"label_smoothing": 0.1})
    assert isinstance(loss, SparseLabelSmoothingCrossentropy)


# -- saving, fitting, KerasTuner ------------------------------------------------------------------------------
def test_save_and_load_gives_same_predictions(tmp_path: Any) -> None:
    values = {
        "preprocessing": "standardize",
        "grayscale": True,
        "augment": True,
        "label_smoothing": 0.1,
        "conv_blocks": 2,
        "filters_0": 16,
        "filters_1": 16,
        "dense_layers": 1,
        "units_0": 64,
    }
    model, _ = build(cnn, values)
    x, y = images(16), labels(16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # runs the augmentation under fit
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert isinstance(loaded.loss, SparseLabelSmoothingCrossentropy)
    assert loaded.loss.label_smoothing == pytest.approx(0.1)
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5)


def test_mixed_precision_output_is_float32() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, _ = build(cnn, {"conv_blocks": 1, "filters_0": 16, "units_0": 64})
        probs = model(images(2), training=False)
        assert keras.backend.standardize_dtype(probs.dtype) == "float32"
        np.testing.assert_allclose(keras.ops.convert_to_numpy(probs).sum(axis=1), 1.0, rtol=1e-3)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_keras_tuner_random_search(tmp_path: Any) -> None:
    import keras_tuner

    from spaces.keras_tuner_adapter import SpaceHyperModel

    hypermodel = SpaceHyperModel(combined, SHAPE, N_CLASSES)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("batch_size", 8)  # keep the one trial tiny; everything else comes from the space
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=1,
        hyperparameters=hp,
        directory=str(tmp_path),
        project_name="kt",
        seed=3,
        overwrite=True,
    )
    names = {h.name for h in tuner.oracle.hyperparameters.space}
    assert {"family", "cnn/conv_blocks", "lenet/filters_3", "learning_rate", "augment"} <= names
    x, y = images(24), labels(24)
    tuner.search(x, y, epochs=1, validation_data=(x[:8], y[:8]), verbose=0)
    trial = tuner.oracle.get_best_trials(1)[0]
    assert trial.status == "COMPLETED" and "val_accuracy" in trial.metrics.metrics
    assert trial.hyperparameters.values["family"] in ("cnn", "lenet")


# -- listing ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SPACES))
def test_describe_space_lists_params_and_points(name: str) -> None:
    text = describe_space(name)
    hp = ValuesHyperParameters()
    get_space(name).declare(hp)
    for param in hp.space:
        assert f"{param}:" in text
    for point in get_space(name).POINTS:
        assert f"{point}:" in text
    if name == "all":
        assert "cnn/filters_3" in text and "lenet/pool_3" in text and "if family in ['lenet']" in text


def test_get_space() -> None:
    assert get_space("all") is combined and {"cnn": cnn, "lenet": lenet, "all": combined} == SPACES
    with pytest.raises(ValueError, match=r"unknown space 'vgg'; choose from cnn, lenet, all"):
        get_space("vgg")
