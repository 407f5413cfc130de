"""The compiled engine's checks, run by test_compiled.py in a child with KERAS_BACKEND=jax.

One child runs them all (JAX starts once) and prints one JSON line; the test asserts on it.
Usage: python jax_compiled_checks.py DATA_DIR CACHE_DIR
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import keras
import numpy as np

import spaces
from search.data import load_dataset
from search.engine.compiled import train_model_compiled
from search.engine.engines import train_model
from search.engine.trainer import EpochHook
from spaces import ValuesHyperParameters

# A small lenet with batch norm, label smoothing and the cosine schedule; no augmentation, so it learns
# within two epochs on the tiny data and compiles quickly. Batches of 43 split the 430 training images
# into 10 steps with no partial batch, so fit compiles one train step fewer.
VALUES = {
    "preprocessing": "standardize",
    "grayscale": False,
    "augment": False,
    "optimizer": "adam",
    "learning_rate": 3e-3,
    "label_smoothing": 0.1,
    "batch_size": 43,
    "lr_schedule": "cosine",
    "filters_0": 8,
    "filters_1": 16,
    "filters_2": 32,
    "filters_3": 32,
    "kernel_0": 3,
    "kernel_1": 3,
    "kernel_2": 3,
    "kernel_3": 3,
    "padding_0": "same",
    "padding_1": "same",
    "padding_2": "same",
    "padding_3": "same",
    "conv_dropout_0": 0.0,
    "conv_dropout_1": 0.0,
    "pool_3": True,
    "conv_dropout_2": 0.0,
    "units_0": 64,
    "dense_dropout_0": 0.0,
    "units_1": 32,
    "dense_dropout_1": 0.0,
    "initializer": "he_normal",
    "batch_norm": True,
    "activation": "relu",
}
EPOCHS = 4  # three that learn, then a zeroed one
CHUNK = 2  # 10 steps per epoch: 5 chunks (on a CPU the chunks are unrolled and divide the epoch)


class ZeroWeightsBefore(keras.callbacks.Callback):
    """Zeroes every trainable weight before ``epoch`` (0-based): the network goes dead, so that epoch
    cannot be the best one and restoring the best weights is visible."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.epoch:
            for v in self.model.trainable_variables:
                v.assign(np.zeros(v.shape, v.dtype))


def build(dataset, values: dict) -> keras.Model:
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    return spaces.lenet.build(ValuesHyperParameters(dict(values)), dataset.input_shape, dataset.n_classes)


def result(r, model: keras.Model) -> dict:
    return {
        **dataclasses.asdict(r),
        "iterations": int(model.optimizer.iterations.value),
        "learning_rate": float(model.optimizer.learning_rate),
    }


def main(data_dir: str, cache_dir: str) -> None:
    # Every compiled run below trains the same architecture: XLA's compilation cache lets the later
    # runs skip compiling (tracing still runs), which keeps the whole child short.
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    dataset = load_dataset(Path(data_dir), seed=0)
    out: dict = {
        "backend": keras.backend.backend(),
        "steps": len(dataset.train) // VALUES["batch_size"],
        "epochs": EPOCHS,
        "base_lr": VALUES["learning_rate"],
        "majority": float(np.bincount(dataset.valid.labels).max() / len(dataset.valid)),
    }

    # (a) fit and compiled on the same seed; (e) best weights restored; (f) batch-norm statistics move.
    model = build(dataset, VALUES)
    out["fit"] = result(
        train_model(
            model, dataset, VALUES, epochs=EPOCHS, patience=EPOCHS, hooks=[ZeroWeightsBefore(EPOCHS - 1)], engine="fit"
        ),
        model,
    )
    model = build(dataset, VALUES)
    moving = [v for v in model.non_trainable_variables if "moving_mean" in v.path]
    before = [np.array(v.value) for v in moving]
    r = train_model_compiled(
        model, dataset, VALUES, epochs=EPOCHS, patience=EPOCHS, hooks=[ZeroWeightsBefore(EPOCHS - 1)], chunk_steps=CHUNK
    )
    out["compiled"] = result(r, model)
    out["evaluate"] = model.evaluate(
        dataset.valid.features, dataset.valid.labels, batch_size=1024, verbose=0, return_dict=True
    )
    out["moving_mean_change"] = min(float(np.abs(np.array(v.value) - b).max()) for v, b in zip(moving, before))

    # (g) the loop form that accelerators run (lax.fori_loop), chunks of 3, 3, 3 and 1 steps: the
    # same steps on the same batches as the unrolled run above, so its first epoch ends alike.
    model = build(dataset, VALUES)
    r = train_model_compiled(model, dataset, VALUES, epochs=1, patience=EPOCHS, chunk_steps=3, unroll=False)
    out["loop"] = result(r, model)

    # (b) a deadline already past: one chunk, then the epoch's validation, then stop.
    model = build(dataset, VALUES)
    r = train_model_compiled(
        model, dataset, VALUES, epochs=EPOCHS, patience=EPOCHS, deadline=time.monotonic() - 1, chunk_steps=CHUNK
    )
    out["time_cap"] = result(r, model)

    # (c) a pruning hook that stops after epoch 1.
    model = build(dataset, VALUES)
    r = train_model_compiled(
        model,
        dataset,
        VALUES,
        epochs=EPOCHS,
        patience=EPOCHS,
        hooks=[EpochHook(lambda epoch, val: epoch >= 1)],
        chunk_steps=CHUNK,
    )
    out["pruned"] = result(r, model)

    # (d) a learning rate that blows the weights up (1e6 only saturates the softmax: Keras clips the
    # probabilities, so the loss stays finite at -log(1e-7)).
    values = {**VALUES, "learning_rate": float("inf")}
    model = build(dataset, values)
    r = train_model_compiled(model, dataset, values, epochs=EPOCHS, patience=EPOCHS, chunk_steps=CHUNK)
    out["nan"] = result(r, model)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
