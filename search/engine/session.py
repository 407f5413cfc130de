"""A fresh Keras session for every model, including the one clean-up TensorFlow needs for it.

``keras.backend.clear_session()`` should leave nothing of the previous model behind, and under the
JAX backend it does. Under TensorFlow 2.21 / Keras 3 it does not: every trace of the train step runs
the optimizer's gradient all-reduce (``ReplicaContext.all_reduce``) through ``tf.custom_gradient``,
which registers a ``CustomGradient-<n>`` function in TensorFlow's global gradient registry and never
removes it. That function's closure holds the traced graph, so each trained model leaves about
12,000-20,000 Python graph objects and 10-15 MiB behind (upstream: keras-team/keras #21090,
tensorflow/tensorflow #61791). Over a 40-trial search that was +39% RSS (BENCHMARKS.md).

The registry is only read while a gradient is being traced, so once the models that traced those
functions are gone the entries are dead; dropping the ones registered after this module was first
used frees the graphs. This is the only place the project reaches into TensorFlow internals, and it
does nothing under other backends or if TensorFlow ever renames the registry.

``clear_session()`` also resets Keras' global dtype policy to float32, which silently undid
``--precision``: float32 and mixed_bfloat16 searches trained identical models. The policy in effect
before the clear is put back after it, so every trial and final model is built with the chosen one.
"""

from __future__ import annotations

import gc

import keras

_CUSTOM_GRADIENT_PREFIX = "CustomGradient-"
_baseline: set[str] | None = None


def fresh_session() -> None:
    """Forget every model built so far in this process, then collect what they held; the global
    dtype policy (``--precision``) stays as it was."""
    policy = keras.config.dtype_policy()
    keras.backend.clear_session()
    keras.config.set_dtype_policy(policy)
    drop_dead_custom_gradients()
    gc.collect()


def drop_dead_custom_gradients() -> int:
    """Drop the custom-gradient registrations made by earlier traces; returns how many."""
    global _baseline
    registry = _gradient_registry()
    if registry is None:
        return 0
    if _baseline is None:  # whatever was registered before our first model is not ours to drop
        _baseline = {k for k in registry if k.startswith(_CUSTOM_GRADIENT_PREFIX)}
        return 0
    dead = [k for k in registry if k.startswith(_CUSTOM_GRADIENT_PREFIX) and k not in _baseline]
    for key in dead:
        del registry[key]
    return len(dead)


def _gradient_registry() -> dict | None:
    if keras.backend.backend() != "tensorflow":
        return None
    try:
        from tensorflow.python.framework import ops
    except ImportError:
        return None
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None
