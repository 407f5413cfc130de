"""A fresh session per trial really frees the previous trial's traced graphs (the memory leak fix)."""

from __future__ import annotations

import gc
from pathlib import Path

import keras
import pytest

from search.data import load_dataset
from search.engine.engines import train_model
from search.engine.session import fresh_session


def _live_func_graphs() -> int:
    gc.collect()
    return sum(type(o).__name__ == "FuncGraph" for o in gc.get_objects())


def _train_once(data_dir: Path) -> None:
    """One small Adam-trained model through the trial code (the leak came from the optimizer step)."""
    fresh_session()
    dataset = load_dataset(data_dir)
    model = keras.Sequential(
        [
            keras.Input(dataset.input_shape),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Flatten(),
            keras.layers.Dense(dataset.n_classes, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    train_model(model, dataset, {"batch_size": 64}, epochs=1, patience=1, steps_per_execution=2)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the leak and its fix are TensorFlow's")
def test_trained_models_leave_no_traced_graphs_behind(tiny_data: Path) -> None:
    _train_once(tiny_data)
    fresh_session()
    after_one = _live_func_graphs()
    for _ in range(3):
        _train_once(tiny_data)
    fresh_session()
    # Without the registry clean-up every trained model keeps its train-step graphs alive.
    assert _live_func_graphs() <= after_one


def test_fresh_session_is_safe_before_any_model_and_twice_in_a_row() -> None:
    fresh_session()
    fresh_session()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert model(keras.ops.ones((1, 4))).shape == (1, 2)
