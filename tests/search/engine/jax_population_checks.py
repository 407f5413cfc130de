"""Population training's checks, run by test_population.py in a child with KERAS_BACKEND=jax.

Each member of a population of 4 (AdamW: learning rate, weight decay, label smoothing and seed
differ) is trained again alone by the compiled engine with the same seed; a second population of two has
one member pruned after its first epoch. One JSON line out.
Usage: python jax_population_checks.py DATA_DIR CACHE_DIR
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import keras

import spaces
from search.data import load_dataset
from search.engine.compiled import order_seed, train_model_compiled
from search.engine.population import Member, train_population
from search.engine.trainer import EpochHook
from spaces import ValuesHyperParameters

sys.path.insert(0, str(Path(__file__).parent))
from jax_compiled_checks import CHUNK, VALUES, result  # the compiled checks' small lenet

EPOCHS = 2
BASE = {**VALUES, "optimizer": "adamw"}
MEMBERS = [  # (seed, learning rate, weight decay, label smoothing)
    (11, 3e-3, 1e-4, 0.1),
    (12, 1e-3, 1e-2, 0.0),
    (13, 5e-3, 5e-2, 0.2),
    (14, 2e-3, 1e-3, 0.05),
]


def values_of(lr: float, wd: float, ls: float) -> dict:
    return {**BASE, "learning_rate": lr, "weight_decay": wd, "label_smoothing": ls}


def built(dataset, seed: int, values: dict) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return spaces.lenet.build(ValuesHyperParameters(dict(values)), dataset.input_shape, dataset.n_classes)


def main(data_dir: str, cache_dir: str) -> None:
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    dataset = load_dataset(Path(data_dir), seed=0)
    out: dict = {
        "backend": keras.backend.backend(),
        "epochs": EPOCHS,
        "steps": len(dataset.train) // BASE["batch_size"],
    }

    keras.backend.clear_session()
    members, models = [], []
    for seed, lr, wd, ls in MEMBERS:
        model = built(dataset, seed, values_of(lr, wd, ls))
        members.append(Member(model, values_of(lr, wd, ls), order_seed()))
        models.append(model)
    start = time.monotonic()
    results = train_population(members, dataset, epochs=EPOCHS, patience=EPOCHS, chunk_steps=CHUNK)
    out["population_wall"] = time.monotonic() - start
    out["population"] = [result(r, m) for r, m in zip(results, models)]

    out["solo"] = []
    for seed, lr, wd, ls in MEMBERS:
        keras.backend.clear_session()
        model = built(dataset, seed, values_of(lr, wd, ls))
        r = train_model_compiled(
            model, dataset, values_of(lr, wd, ls), epochs=EPOCHS, patience=EPOCHS, chunk_steps=CHUNK
        )
        out["solo"].append(result(r, model))

    # The second member is pruned after its first epoch; the others go on without it.
    keras.backend.clear_session()
    members, models = [], []
    for k, (seed, lr, wd, ls) in enumerate(MEMBERS[:2]):
        model = built(dataset, seed, values_of(lr, wd, ls))
        hooks = [EpochHook(lambda epoch, val: epoch >= 1)] if k == 1 else []
        members.append(Member(model, values_of(lr, wd, ls), order_seed(), hooks=hooks))
        models.append(model)
    results = train_population(members, dataset, epochs=EPOCHS, patience=EPOCHS, chunk_steps=CHUNK)
    out["pruned"] = [result(r, m) for r, m in zip(results, models)]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
