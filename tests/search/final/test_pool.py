"""The final model is built from the search's own models: kept, selected on validation, never worse."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pytest

from search.config import SearchConfig
from search.engine.kept_models import keep_model, kept_models
from search.engine.loop import run_search
from search.engine.study import load_space
from search.final import further as further_module
from search.final import retrain_best
from search.final.calibration import negative_log_likelihood
from search.final.combine import assemble
from search.final.further import train_further
from search.final.pool import FURTHER, retrain_seed, search_members
from search.final.selection import mix, select_ensemble
from search.progress import Progress


def _onehot_ish(labels: np.ndarray, right: np.ndarray, confidence: float, n: int = 3) -> np.ndarray:
    """Probabilities that put ``confidence`` on the true class where ``right``, else on the next class."""
    probs = np.full((len(labels), n), (1 - confidence) / (n - 1))
    picked = np.where(right, labels, (labels + 1) % n)
    probs[np.arange(len(labels)), picked] = confidence
    return probs


def test_ensemble_selection_finds_the_known_best_mix() -> None:
    labels = np.arange(60) % 3
    half = np.arange(60) < 30
    a = _onehot_ish(labels, half, 0.9)  # right on the first half
    b = _onehot_ish(labels, ~half, 0.9)  # right on the second half
    noisy = _onehot_ish(labels, np.zeros(60, bool), 0.9)  # confidently wrong: adding it only hurts
    weights = select_ensemble([noisy, a, b], labels)
    assert weights[0] == 0.0 and weights[1] == pytest.approx(0.5) and weights[2] == pytest.approx(0.5)
    assert sum(weights) == pytest.approx(1.0)
    # Never worse than the best single model on validation log-loss; one good model stays alone.
    assert negative_log_likelihood(mix([noisy, a, b], weights), labels) < negative_log_likelihood(a, labels)
    assert select_ensemble([noisy, _onehot_ish(labels, np.ones(60, bool), 0.9)], labels) == (0.0, 1.0)


def test_a_weighted_ensemble_computes_what_selection_scored() -> None:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    models = [
        keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
        for _ in range(3)
    ]
    images = np.random.default_rng(0).integers(0, 255, (8, 4, 4, 3)).astype("float32")
    probs = [m.predict(images, verbose=0) for m in models]
    weights = (0.6, 0.0, 0.4)
    combined = assemble(models, weights=weights).predict(images, verbose=0)
    np.testing.assert_allclose(combined, mix(probs, weights), atol=1e-5)


def test_kept_models_are_bounded_and_the_best_stay(tmp_path: Path) -> None:
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    labels = np.array([0, 1, 0, 1])
    for number, confidence in enumerate([0.6, 0.9, 0.7, 0.55, 0.8]):
        probs = np.where(np.eye(2)[labels] > 0, confidence, 1 - confidence)
        keep_model(tmp_path, number, model, probs, labels, keep=2)
    kept = kept_models(tmp_path)
    assert [k.trial_number for k in kept] == [1, 4]  # the two of lowest log-loss, best first
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "trial-1.keras",
        "trial-1.npz",
        "trial-4.keras",
        "trial-4.npz",
    ]
    assert keep_model(tmp_path, 9, model, np.full((4, 2), 0.5), labels, keep=2) is None  # not good enough
    assert keep_model(tmp_path, 9, model, np.full((4, 2), 0.5), labels, keep=0) is None


def test_retrain_seeds_never_repeat_a_trial_seed() -> None:
    trial_seeds = {(0 * 100_003 + n) % 2**31 for n in range(1000)}
    assert not trial_seeds & {retrain_seed(0, n, i) for n in range(1000) for i in range(3)}


@pytest.mark.slow
def test_with_no_time_to_train_the_final_model_is_built_from_the_kept_models(tiny_data: Path, tmp_path: Path) -> None:
    cfg = SearchConfig(
        data_dir=tiny_data,
        space="lenet",
        trials=2,
        epochs=2,
        final_epochs=2,
        out=tmp_path,
        study="kept",
        retrain=False,
        dashboard_every=0,
        export=(),
        steps_per_execution=1,
        named_points=False,
        pruner="none",
    )
    outcome = run_search(cfg)
    kept = kept_models(cfg.run_dir)
    assert len(kept) == 2
    config = retrain_best(outcome.study, outcome.dataset, cfg, deadline=time.monotonic())  # no time left
    assert config["pool"] == {"kept": 2, "retrained": 0, "further": 0}
    best_kept = max(round(k.val_accuracy * len(outcome.dataset.valid)) for k in kept)
    assert config["final_model"]["val_correct"] >= best_kept  # never worse than the best kept model
    assert all(m["source"] == "search" for m in config["members"])


def test_the_best_model_is_trained_further_from_its_weights(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = SearchConfig(
        data_dir=tiny_data,
        space="lenet",
        trials=1,
        epochs=2,
        out=tmp_path,
        study="further",
        retrain=False,
        dashboard_every=0,
        export=(),
        steps_per_execution=1,
        named_points=False,
        pruner="none",
        final_candidates=1,
    )
    outcome = run_search(cfg)
    space = load_space(cfg.space)
    pool = search_members(outcome.study, cfg, outcome.dataset, lambda line: None)
    parent = pool[0]
    started_from = []
    real = further_module.train_model

    def spy(model, *args, **kwargs):
        started_from.append([w.copy() for w in model.get_weights()])
        return real(model, *args, **kwargs)

    monkeypatch.setattr(further_module, "train_model", spy)
    made = train_further(pool, space, outcome.dataset, cfg, None, Progress(0).events())  # no deadline: one run
    assert len(made) == 1 and made[0].source == FURTHER and made[0].file_stem == "trial-0-further-1"
    assert made[0].result.epochs_run == parent.result.epochs_run + len(made[0].result.val_curve)
    # from the parent's weights, not from scratch; the parent itself is left as it was
    assert all(np.array_equal(a, b) for a, b in zip(started_from[0], parent.model.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(made[0].model.get_weights(), parent.model.get_weights()))
    config = retrain_best(outcome.study, outcome.dataset, cfg, deadline=None)
    assert config["pool"]["further"] == 1 and config["pool"]["kept"] == 1
    assert config["final_model"]["val_correct"] >= parent.describe(outcome.dataset.valid.labels)["val_correct"]
