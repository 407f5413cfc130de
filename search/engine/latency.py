"""CPU latency of a model on one image: the cost a small device pays, as a search objective.

Measured, not estimated from weights: two models of one size differ by their layers' shapes.
The median of repeated batch-1 forward passes after warm-up (the first calls trace and compile).
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np

WARMUP = 3
REPEATS = 20


def latency_per_image(model: keras.Model, images: np.ndarray, *, repeats: int = REPEATS) -> float:
    """Median seconds of one ``model(x)`` on a single image (``images[:1]``)."""
    x = keras.ops.convert_to_tensor(images[:1])
    for _ in range(WARMUP):
        keras.ops.convert_to_numpy(model(x, training=False))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(model(x, training=False))
        times.append(time.perf_counter() - start)
    return float(statistics.median(times))
