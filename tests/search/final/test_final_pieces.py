"""Calibration, combined final models, the final choice and the test metrics, on tiny cases."""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

import spaces  # noqa: F401  (registers the custom layers, as loading a saved final model would)
from search.final.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability,
)
from search.final.choose import Option, choose
from search.final.combine import assemble, ensemble, with_temperature, with_tta
from search.final.metrics import model_speed, size_on_disk, test_metrics, wilson_interval
from search.schema import TrialKey, distinct_top
from spaces.layers import PerImageStandardization, TemperatureScaling, Translate

SHAPE = (8, 8, 3)
CLASSES = 5


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- calibration ------------------------------------------------------------------------------------
def test_ece_of_a_perfectly_calibrated_set_is_zero_and_hand_cases() -> None:
    # 10 images at confidence 0.8 (8 right), 5 at 0.6 (3 right): accuracy equals confidence per bin.
    probs = np.array([[0.8, 0.2]] * 10 + [[0.6, 0.4]] * 5)
    labels = np.array([0] * 8 + [1] * 2 + [0] * 3 + [1] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)
    # Confidence 0.9 everywhere, half right: |0.5 - 0.9| = 0.4.
    probs = np.array([[0.9, 0.1]] * 4)
    assert expected_calibration_error(probs, np.array([0, 0, 1, 1])) == pytest.approx(0.4)
    # Two bins: 2 images at 0.95 both right (gap 0.05), 2 at 0.55 both wrong (gap 0.55) -> 0.3.
    probs = np.array([[0.95, 0.05]] * 2 + [[0.55, 0.45]] * 2)
    assert expected_calibration_error(probs, np.array([0, 0, 1, 1]), bins=10) == pytest.approx(0.3)


def test_reliability_bins() -> None:
    probs = np.array([[0.95, 0.05]] * 2 + [[0.55, 0.45]] * 3)
    r = reliability(probs, np.array([0, 0, 1, 1, 0]), bins=10)
    assert r["count"] == [0, 0, 0, 0, 0, 3, 0, 0, 0, 2] and len(r["edges"]) == 11
    assert r["confidence"][9] == pytest.approx(0.95) and r["accuracy"][9] == 1.0
    assert r["confidence"][5] == pytest.approx(0.55) and r["accuracy"][5] == pytest.approx(1 / 3)
    assert r["confidence"][0] is None and r["accuracy"][0] is None
    # Bins are (lo, hi]: a confidence of exactly 0.5 falls in the bin below 0.5.
    assert reliability(np.array([[0.5, 0.5]]), np.array([0]), bins=10)["count"][4] == 1


def test_temperature_one_is_identity_and_argmax_is_kept() -> None:
    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(20, CLASSES)) * 3)
    assert np.allclose(apply_temperature(probs, 1.0), probs, atol=1e-9)
    soft = apply_temperature(probs, 2.0)
    assert np.allclose(soft.sum(axis=1), 1.0)
    assert (soft.argmax(axis=1) == probs.argmax(axis=1)).all()
    assert (soft.max(axis=1) < probs.max(axis=1)).all()
    # T = 2 on softmax(z) is softmax(z / 2).
    z = rng.normal(size=(3, CLASSES))
    assert np.allclose(apply_temperature(softmax(z), 2.0), softmax(z / 2), atol=1e-9)


def test_fit_temperature_on_over_and_under_confident_predictions() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4000, CLASSES)) * 1.5
    true_p = softmax(z)
    labels = np.array([rng.choice(CLASSES, p=p) for p in true_p])
    over = fit_temperature(softmax(3.0 * z), labels)  # logits 3x too large: T should be about 3
    under = fit_temperature(softmax(0.5 * z), labels)
    assert over > 1 and over == pytest.approx(3.0, rel=0.15)
    assert under < 1 and under == pytest.approx(0.5, rel=0.15)
    calibrated = apply_temperature(softmax(3.0 * z), over)
    assert negative_log_likelihood(calibrated, labels) < negative_log_likelihood(softmax(3.0 * z), labels)
    assert expected_calibration_error(calibrated, labels) < expected_calibration_error(softmax(3.0 * z), labels)
    assert fit_temperature(np.zeros((0, CLASSES)), np.zeros(0)) == 1.0


def test_negative_log_likelihood_by_hand() -> None:
    probs = np.array([[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]])
    expected = -(math.log(0.5) + math.log(0.75) + math.log(1e-12)) / 3
    assert negative_log_likelihood(probs, np.array([0, 1, 1])) == pytest.approx(expected)


# -- metrics ----------------------------------------------------------------------------------------
def test_wilson_interval() -> None:
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = wilson_interval(100, 100)
    assert hi == 1.0 and lo == pytest.approx(0.9630, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_test_metrics_extend_the_classification_report() -> None:
    probs = np.array([[0.8, 0.2]] * 10 + [[0.6, 0.4]] * 5)
    labels = np.array([0] * 8 + [1] * 2 + [0] * 3 + [1] * 2)
    report = test_metrics(labels, probs, ["a", "b"])
    # Every image is called "a": 11 of 15 right; "a" has 11 images, "b" 4, none of them found.
    assert report["confusion_matrix"] == [[11, 0], [4, 0]] and report["n_test"] == 15
    a, b = report["per_class"]
    assert (a["support"], a["recall"], a["precision"]) == (11, 1.0, pytest.approx(11 / 15))
    assert a["f1"] == pytest.approx(2 * (11 / 15) / (1 + 11 / 15))
    assert (b["support"], b["recall"], b["precision"], b["f1"]) == (4, 0.0, 0.0, 0.0)
    assert report["macro_f1"] == pytest.approx(a["f1"] / 2)
    expected_loss = -(8 * np.log(0.8) + 2 * np.log(0.2) + 3 * np.log(0.6) + 2 * np.log(0.4)) / 15
    assert report["test_loss"] == pytest.approx(expected_loss)
    assert report["test_accuracy"] == pytest.approx(11 / 15)
    assert report["accuracy_ci95"] == pytest.approx(list(wilson_interval(11, 15)))
    assert report["ece"] == pytest.approx(0.0, abs=1e-12)
    assert report["nll"] == pytest.approx(report["test_loss"])


def test_size_on_disk(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"x" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 7)
    assert size_on_disk(tmp_path / "a.bin") == 10 and size_on_disk(tmp_path) == 17
    with pytest.raises(FileNotFoundError):
        size_on_disk(tmp_path / "missing")


# -- choice -----------------------------------------------------------------------------------------
def _probs_for(labels: np.ndarray, right: int, confidence: float) -> np.ndarray:
    """Two-class probabilities with the first ``right`` images right at ``confidence``."""
    probs = np.empty((len(labels), 2))
    for i, y in enumerate(labels):
        hit = y if i < right else 1 - y
        probs[i] = [confidence, 1 - confidence] if hit == 0 else [1 - confidence, confidence]
    return probs


def test_choose_keeps_single_unless_another_is_at_least_as_accurate() -> None:
    labels = np.array([0, 1] * 10)
    single = Option("single", _probs_for(labels, 15, 0.7), (3,))
    worse = Option("ensemble", _probs_for(labels, 14, 0.9), (3, 5))  # one image worse, confident
    assert choose([single, worse], labels) is single
    better = Option("ensemble", _probs_for(labels, 17, 0.6), (3, 5))
    assert choose([single, better], labels) is better
    # Within one image of the most accurate: the lower NLL wins, even if one image less accurate.
    near = Option("tta", _probs_for(labels, 16, 0.55), (3,), tta=True)
    sharp = Option("ensemble+tta", _probs_for(labels, 15, 0.9), (3, 5), tta=True)
    assert choose([single, near], labels) is single  # 16 vs 15 is a tie; single has the lower NLL
    assert choose([near, sharp, single], labels) is single
    calibrated = Option("tta+T", _probs_for(labels, 16, 0.75), (3,), tta=True, temperature=1.3)
    assert choose([single, near, calibrated], labels) is calibrated  # 16 right, lowest NLL
    same = Option("single+T", single.probs.copy(), (3,), temperature=1.0)
    assert choose([same, single], labels) is single  # an exact tie goes to "single"
    with pytest.raises(ValueError):
        choose([better], labels)


def test_choose_is_never_worse_than_single_on_validation() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 30)
    for _ in range(200):
        options = [
            Option("single" if i == 0 else f"o{i}", softmax(rng.normal(size=(30, 3)) * rng.uniform(0.5, 4)), (i,))
            for i in range(rng.integers(1, 6))
        ]
        pick, single = choose(options, labels), options[0]
        gain = pick.correct(labels) - single.correct(labels)
        assert gain > 0 or (gain == 0 and pick.nll(labels) <= single.nll(labels))
        described = pick.describe(labels)
        assert described["val_correct"] == pick.correct(labels) and described["members"] == list(pick.members)


def _trial(
    number: int, value: float, params: dict, state: TrialState = TrialState.COMPLETE, loss: float | None = None
) -> optuna.trial.FrozenTrial:
    attrs = {TrialKey.VAL_LOSS_CURVE: [loss], TrialKey.BEST_EPOCH: 1} if loss is not None else {}
    dists = {"lr": FloatDistribution(1e-4, 1.0, log=True), "units": IntDistribution(1, 512)}
    t = create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params=params,
        distributions={k: dists[k] for k in params},
        user_attrs=attrs,
    )
    t.number = number
    return t


def test_distinct_top_counts_a_configuration_once() -> None:
    a, b, c = {"lr": 0.01, "units": 64}, {"lr": 0.001, "units": 64}, {"lr": 0.01, "units": 128}
    trials = [
        _trial(0, 0.90, a),
        _trial(1, 0.95, b, loss=0.3),
        _trial(2, 0.95, a, loss=0.2),
        _trial(3, 0.99, c, state=TrialState.PRUNED),
        _trial(4, 0.80, c),
        _trial(5, 0.95, b, loss=0.4),
    ]
    top = distinct_top(trials, 3)
    assert [t.number for t in top] == [2, 1, 4]  # 0 and 5 repeat 2 and 1; 3 is not COMPLETE
    assert [t.number for t in distinct_top(trials, 1)] == [2]
    assert distinct_top(trials, 10) == top


# -- combined models --------------------------------------------------------------------------------
def tiny(seed: int, name: str = "tiny") -> keras.Model:
    """A few hundred weights; Flatten + Dense so translations change the output."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=SHAPE, dtype="float32", name="pixels")
    x = PerImageStandardization()(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(CLASSES, name="logits")(x)
    out = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, out, name=name)


def np_shift(x: np.ndarray, dy: int, dx: int, mode: str = "edge") -> np.ndarray:
    """Reference translation: pad with numpy, then slice back to the original size."""
    h, w = x.shape[1:3]
    pad = ((0, 0), (max(dy, 0), max(-dy, 0)), (max(dx, 0), max(-dx, 0)), (0, 0))
    padded = np.pad(x, pad, mode=mode)
    return padded[:, max(-dy, 0) : max(-dy, 0) + h, max(-dx, 0) : max(-dx, 0) + w]


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_on_batch(x), dtype=np.float64)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (6, *SHAPE)).astype("float32")


def test_translate_layer_matches_numpy(images: np.ndarray) -> None:
    for dy, dx in ((2, 0), (-2, 0), (0, 2), (0, -2), (1, -3)):
        got = keras.ops.convert_to_numpy(Translate(dy, dx)(images))
        assert np.array_equal(got, np_shift(images, dy, dx))
        zero = keras.ops.convert_to_numpy(Translate(dy, dx, fill="zero")(images))
        assert np.array_equal(zero, np_shift(images, dy, dx, mode="constant"))
    layer = Translate.from_config(Translate(1, -2, fill="zero", name="s").get_config())
    assert (layer.dy, layer.dx, layer.fill) == (1, -2, "zero")


def test_ensemble_tta_temperature_match_numpy(images: np.ndarray) -> None:
    members = [tiny(0), tiny(1), tiny(2)]
    each = [predict(m, images) for m in members]
    combined = ensemble(members)
    assert [m.name for m in members] == ["member_0", "member_1", "member_2"]
    assert combined.layers[-1].name == "probabilities" and combined.output.dtype == "float32"
    assert np.allclose(predict(combined, images), np.mean(each, axis=0), atol=1e-6)
    assert ensemble([members[0]]) is members[0]

    shifts = ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2))
    tta = with_tta(members[0], shifts)
    expected = np.mean([predict(members[0], np_shift(images, dy, dx)) for dy, dx in shifts], axis=0)
    assert np.allclose(predict(tta, images), expected, atol=1e-6)
    assert not np.allclose(expected, each[0], atol=1e-3)  # the shifts do change the prediction

    calibrated = with_temperature(members[1], 2.5)
    assert np.allclose(predict(calibrated, images), apply_temperature(each[1], 2.5), atol=1e-5)
    assert (predict(calibrated, images).argmax(axis=1) == each[1].argmax(axis=1)).all()
    assert isinstance(calibrated.layers[-1], TemperatureScaling) and calibrated.layers[-1].name == "probabilities"


def test_assembled_model_saves_and_loads_as_one_file(images: np.ndarray, tmp_path: Path) -> None:
    members = [tiny(4, "cnn"), tiny(5, "cnn")]  # same family twice: names must not clash
    each = [predict(m, images) for m in members]
    model = assemble(members, tta=True, temperature=1.7)
    expected = apply_temperature(
        np.mean(
            [
                np.mean([predict(m, np_shift(images, dy, dx)) for m in members], axis=0)
                for dy, dx in ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2))
            ],
            axis=0,
        ),
        1.7,
    )
    before = predict(model, images)
    assert np.allclose(before, expected, atol=1e-5) and not np.allclose(before, np.mean(each, axis=0), atol=1e-3)
    path = tmp_path / "final.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert np.array_equal(predict(loaded, images), before)
    assert loaded.layers[-1].name == "probabilities"
    assert assemble([members[0]]) is members[0]  # nothing to combine: the single model as it is


def test_model_speed_times_the_compiled_predict(images: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny(6)
    calls: list[int] = []
    real = model.predict_on_batch

    def slow(batch: np.ndarray) -> np.ndarray:  # each call takes at least 20 ms, whatever the machine
        calls.append(len(batch))
        time.sleep(0.02)
        return real(batch)

    monkeypatch.setattr(model, "predict_on_batch", slow)
    speed = model_speed(model, images.astype("uint8"), repeats=3, batch_repeats=2, warmup=1, batch_size=8)
    assert calls.count(1) == 1 + 3 and calls.count(8) == 1 + 2  # warm-up, then the timed repeats
    assert speed["latency_ms_batch1"] >= 20.0  # the median call, in milliseconds
    assert speed["images_per_s_batch8"] <= 8 / 0.02  # 8 images per call at >= 20 ms a call
    assert speed["repeats"] == 3 and speed["backend"] == keras.backend.backend()
