"""The compiled training engine (JAX backend): the data stays on the device and an epoch runs as a
few compiled calls of many steps, instead of ``model.fit``'s one host-to-device copy and one Python
round trip per batch.

Under Keras' JAX trainer every batch is sliced on the host and copied with ``jax.device_put``, and
``steps_per_execution`` is a Python loop around the jitted step; on a GPU a small CNN's step is
shorter than that overhead. Here the uint8 images go to the device once per process
(:func:`device_data`), each epoch's order is a permutation drawn on the device, and one jitted call
runs a chunk of ``chunk_steps`` steps of Keras' own ``model.train_step`` (the same loss, metrics,
optimizer update, BatchNorm statistics and augmentation seeds as ``fit``), each on a batch gathered
on the device. Between chunks the host reads the running loss and accuracy (the one sync point) and
calls the same callbacks ``train_model`` uses, so the wall-clock cap, the NaN guard and Ctrl-C act
within one chunk, early stopping restores the best epoch's weights, and the pruning hooks and
progress lines see the logs they see under ``fit``. The validation pass is one jitted call of
``test_step`` over the device-resident validation set. The Keras variables are read before and
written after every epoch, so callbacks see and may change the model at epoch boundaries, as in fit.

Differences from ``fit``: the last partial batch of every epoch is dropped (the permutation changes
every epoch, so over the epochs every image is seen); ``on_train_batch_begin/end`` arrive once per
chunk; ``on_test_begin/end`` once per validation pass (no per-batch test callbacks); a callback that
changes the model inside an epoch is not seen until the next epoch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from spaces import common

from ..data import Dataset
from .trainer import EVAL_BATCH_SIZE, TrainClock, TrainingCallbacks, TrainResult

# Steps per compiled call: short enough that the time cap, NaN detection and Ctrl-C act within a
# fraction of a second on a GPU, long enough that the per-call host work (one scalar read, the
# callbacks) is negligible.
CHUNK_STEPS = 16
# XLA's CPU backend ran a train step inside a loop (lax.scan) or a conditional several times slower
# than the same step as straight-line code (lenet, 2 cores: 0.5 s against 0.07-0.1 s per step), so on
# a CPU the chunk is unrolled; its compile time grows with its length, so the chunk is short there.
CPU_CHUNK_STEPS = 4  # at most: a divisor of the epoch's steps (see chunk_length)


# -- data on the device -----------------------------------------------------------------------------
@dataclass
class DeviceData:
    """A dataset's train and validation arrays on the default device (pixels stay uint8)."""

    source: tuple[np.ndarray, ...]  # the host arrays, held so that their identities stay theirs
    x_train: Any
    y_train: Any
    x_valid: Any
    y_valid: Any


_DEVICE_CACHE: list[DeviceData] = []  # at most one entry: a process trains on one dataset at a time


def device_data(dataset: Dataset) -> DeviceData:
    """The dataset's arrays on the device, copied once per process and reused by every later trial.

    Keyed by the identity of the host arrays rather than ``content_hash``: a subset made with
    ``dataclasses.replace`` (the benchmarks do this) keeps the hash but not the arrays. Only the
    latest dataset is kept, so device memory holds one copy.
    """
    import jax

    arrays = (dataset.train.features, dataset.train.labels, dataset.valid.features, dataset.valid.labels)
    if _DEVICE_CACHE and all(a is b for a, b in zip(_DEVICE_CACHE[0].source, arrays)):
        return _DEVICE_CACHE[0]
    _DEVICE_CACHE.clear()  # free the old copy before making the new one
    entry = DeviceData(arrays, *jax.device_put(arrays))
    _DEVICE_CACHE.append(entry)
    return entry


# -- the compiled functions -------------------------------------------------------------------------
State = tuple[list, list, list, list]  # trainable, non-trainable, optimizer, metrics variables


def _metrics_result(model: keras.Model, metrics_variables: list) -> dict:
    """The model's metric results (loss, accuracy) for the given metric state, as ``fit`` logs them."""
    with keras.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_variables))):
        return model.get_metrics_result()


def chunk_plan(steps: int, chunk_steps: int | None, unroll: bool | None) -> tuple[bool, int]:
    """(unroll, steps per chunk) for an epoch of ``steps``: the defaults of this device (a CPU unrolls
    short chunks, an accelerator loops over ``CHUNK_STEPS``) where the caller gives none."""
    import jax

    on_cpu = jax.default_backend() == "cpu"
    unroll = on_cpu if unroll is None else unroll
    return unroll, chunk_length(steps, int(chunk_steps or (CPU_CHUNK_STEPS if on_cpu else CHUNK_STEPS)), whole=unroll)


def chunk_length(steps: int, requested: int, *, whole: bool) -> int:
    """Steps per chunk: ``requested`` (at most ``steps``); with ``whole``, the largest divisor of ``steps``
    not above it, so that an unrolled chunk never runs past the epoch's end (a prime step count
    gives 1: one step per call, as fit's own loop)."""
    length = max(1, min(requested, steps))
    while whole and steps % length:
        length -= 1
    return length


def _train_chunk(
    model: keras.Model, batch_size: int, length: int, unroll: bool, class_weights: np.ndarray | None = None
) -> Any:
    """A jitted ``(state, x, y, perm, first, count) -> (state, logs)``: ``count`` (at most ``length``)
    steps from step ``first`` of the epoch whose order is ``perm``, each Keras' own ``train_step``
    on a batch gathered on the device (with per-image loss weights from ``class_weights``, as
    ``fit(class_weight=...)`` gives them); ``logs`` are the epoch's running loss and accuracy."""
    import jax
    import jax.numpy as jnp

    per_class = None if class_weights is None else jnp.asarray(class_weights)

    def run(state: State, x: Any, y: Any, perm: Any, first: Any, count: Any) -> tuple[State, dict]:
        def step(j: Any, state: State) -> State:
            idx = jax.lax.dynamic_slice_in_dim(perm, (first + j) * batch_size, batch_size)
            xb, yb = jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)
            batch = (xb, yb) if per_class is None else (xb, yb, jnp.take(per_class, yb.astype("int32")))
            _, state = model.train_step(state, batch)
            return tuple(list(part) for part in state)  # type: ignore[return-value]

        state = run_steps(step, state, length, count, unroll)
        return state, _metrics_result(model, state[3])

    return jax.jit(run)


def run_steps(step: Any, state: Any, length: int, count: Any, unroll: bool) -> Any:
    """``state = step(j, state)`` for j in 0..count-1 inside a traced chunk. Unrolled (straight-line
    code), ``length`` steps: XLA's CPU backend runs a train step inside a loop or a conditional several
    times slower, and there ``length`` divides the epoch's steps, so ``count == length``."""
    import jax

    if unroll:
        for j in range(length):
            state = step(j, state)
        return state
    return jax.lax.fori_loop(0, count, step, state)


def fold_batches(body: Any, carry: Any, x: Any, y: Any, batch_size: int, unroll: bool) -> Any:
    """``carry = body(carry, xb, yb)`` over ``x``, ``y`` in batches of ``batch_size`` (the last one
    shorter) inside a traced function: unrolled on a CPU (as ``run_steps``), a ``lax.scan`` elsewhere."""
    import jax

    full, rest = divmod(len(x), batch_size)
    if unroll:
        for b in range(full):
            carry = body(carry, x[b * batch_size : (b + 1) * batch_size], y[b * batch_size : (b + 1) * batch_size])
    elif full:
        shape = (full, batch_size)
        batches = (
            x[: full * batch_size].reshape(shape + x.shape[1:]),
            y[: full * batch_size].reshape(shape + y.shape[1:]),
        )
        carry, _ = jax.lax.scan(lambda c, data: (body(c, *data), None), carry, batches)
    if rest:
        carry = body(carry, x[full * batch_size :], y[full * batch_size :])
    return carry


def _evaluate(model: keras.Model, batch_size: int, unroll: bool) -> Any:
    """A jitted ``(trainable, non_trainable, metrics0, x, y) -> logs``: Keras' ``test_step`` over the
    whole validation set in batches of ``batch_size`` (the last one shorter), exactly what
    ``evaluate`` inside ``fit`` reports as val_loss and val_accuracy."""
    import jax

    def run(trainable: list, non_trainable: list, metrics: list, x: Any, y: Any) -> dict:
        def body(state: tuple, xb: Any, yb: Any) -> tuple:
            _, state = model.test_step(state, (xb, yb))
            return tuple(list(part) for part in state)

        state = fold_batches(body, (trainable, non_trainable, metrics), x, y, batch_size, unroll)
        return _metrics_result(model, state[2])

    return jax.jit(run)


def _aot(fn: Any, *args: Any) -> tuple[Any, float]:
    """``fn`` compiled ahead of time for ``args``' shapes, and the seconds tracing and compiling took."""
    start = time.monotonic()
    compiled = fn.lower(*args).compile()
    return compiled, time.monotonic() - start


def _read(model: keras.Model) -> tuple[list, list, list]:
    """The model's trainable, non-trainable and optimizer variables' current values (no copies)."""
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
    )


def _write(model: keras.Model, state: State) -> None:
    """Assign a training state back to the Keras variables (metrics are per epoch and not kept)."""
    groups = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables)
    for variables, values in zip(groups, state[:3]):
        for variable, value in zip(variables, values):
            variable.assign(value)


def order_seed() -> int:
    """The seed of a run's epoch orders, drawn from the global seed (``keras.utils.set_random_seed``)
    like fit's shuffle; a population member draws its own at the same point after its build."""
    return int(np.random.randint(0, 2**31 - 1))


def _host(logs: dict) -> dict[str, float]:
    import jax

    return {key: float(value) for key, value in jax.device_get(logs).items()}


# -- training ---------------------------------------------------------------------------------------
def train_model_compiled(
    model: keras.Model,
    dataset: Dataset,
    values: dict,
    *,
    epochs: int,
    patience: int,
    deadline: float | TrainClock | None = None,
    hooks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
    chunk_steps: int | None = None,
    unroll: bool | None = None,
) -> TrainResult:
    """``trainer.fit_model``'s contract (same settings, stop reasons, curves and best weights restored),
    trained by compiled chunks of ``chunk_steps`` steps on device-resident data (JAX backend only).

    The last partial batch of each epoch is dropped (``fit`` keeps it); a training set smaller than
    one batch is trained as one batch. ``compile_seconds`` in the result is the time spent tracing
    and compiling the train chunk and the validation pass (once per model). ``chunk_steps`` defaults
    to ``CHUNK_STEPS`` on an accelerator and ``CPU_CHUNK_STEPS`` on a CPU; ``unroll`` (straight-line
    chunks instead of loops, of a length that divides the epoch's steps) defaults to True on a CPU only.
    """
    run = _CompiledRun(
        model,
        dataset,
        values,
        epochs=epochs,
        patience=patience,
        deadline=deadline,
        hooks=hooks,
        verbose=verbose,
        chunk_steps=chunk_steps,
        unroll=unroll,
    )
    return run.train()


class _CompiledRun:
    """One model's training by compiled chunks: everything set up once, then trained epoch by epoch."""

    def __init__(
        self,
        model: keras.Model,
        dataset: Dataset,
        values: dict,
        *,
        epochs: int,
        patience: int,
        deadline: float | TrainClock | None,
        hooks: Sequence[keras.callbacks.Callback],
        verbose: int,
        chunk_steps: int | None,
        unroll: bool | None,
    ) -> None:
        import jax

        # The epoch orders come from the global seed (keras.utils.set_random_seed), like fit's shuffle,
        # drawn first, right after the model's build, where a population member draws its own.
        self.base_key = jax.random.key(order_seed())
        self.model, self.dataset, self.epochs = model, dataset, epochs
        self.settings = common.training_settings(values)
        self.data = device_data(dataset)
        self.n = len(dataset.train)
        self.batch = min(self.settings.batch_size, self.n)
        self.steps = self.n // self.batch
        self.unroll, self.length = chunk_plan(self.steps, chunk_steps, unroll)
        self.run = TrainingCallbacks.for_run(
            self.settings, epochs=epochs, patience=patience, deadline=deadline, hooks=hooks
        )
        self.callbacks = keras.callbacks.CallbackList(
            self.run.callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            verbose=verbose,
            epochs=epochs,
            steps=self.steps,
            model=model,
        )
        # Build the compiled loss, metrics and optimizer variables outside any trace, as fit does.
        model._symbolic_build(data_batch=(dataset.train.features[: self.batch], dataset.train.labels[: self.batch]))
        model.reset_metrics()
        self.fresh_metrics = [v.value for v in model.metrics_variables]
        self.chunk: Any = None
        self.evaluate: Any = None
        self.compile_seconds = 0.0
        self.curves: dict[str, list[float]] = {"val_accuracy": [], "accuracy": [], "val_loss": []}
        self.epoch_logs: dict[str, float] = {}
        self.state: State | None = None

    def train(self) -> TrainResult:
        model = self.model
        model.stop_training = False
        start = time.monotonic()
        self.callbacks.on_train_begin()
        try:
            for epoch in range(self.epochs):
                self._epoch(epoch)
                if model.stop_training:
                    break
        finally:
            if self.state is not None:  # stopped inside an epoch (Ctrl-C): keep what was trained, as fit does
                _write(model, self.state)
            model.optimizer.finalize_variable_values(model.trainable_weights)
        self.callbacks.on_train_end(logs=self.epoch_logs)  # early stopping restores the best epoch's weights here
        return self.run.result(self.curves, time.monotonic() - start, self.compile_seconds)

    def _epoch(self, epoch: int) -> None:
        import jax

        self.callbacks.on_epoch_begin(epoch)  # the lr schedule sets the optimizer's rate here
        # Read after the callbacks, as fit does: what they assigned (the learning rate) counts.
        self.state = (*_read(self.model), list(self.fresh_metrics))
        logs = self._train_chunks(jax.random.permutation(jax.random.fold_in(self.base_key, epoch), self.n))
        # The Keras variables follow every epoch, so callbacks (early stopping's copy of the best
        # weights) see this epoch's model; assigning a JAX array copies nothing.
        _write(self.model, self.state)
        self.state = None
        self._validate(epoch, logs)

    def _train_chunks(self, perm: Any) -> dict[str, float]:
        """One epoch's steps, a compiled chunk at a time; the last chunk's logs."""
        import jax.numpy as jnp

        logs: dict[str, float] = {}
        for first in range(0, self.steps, self.length):
            self.callbacks.on_train_batch_begin(first)
            count = min(self.length, self.steps - first)
            args = (self.state, self.data.x_train, self.data.y_train, perm, jnp.int32(first), jnp.int32(count))
            if self.chunk is None:
                weights = common.class_weights(
                    self.dataset.train.labels, self.dataset.n_classes, self.settings.class_balance
                )
                self.chunk, seconds = _aot(
                    _train_chunk(self.model, self.batch, self.length, self.unroll, weights), *args
                )
                self.compile_seconds += seconds
            self.state, device_logs = self.chunk(*args)
            logs = _host(device_logs)  # waits for the chunk: the cap and Ctrl-C act per chunk
            self.callbacks.on_train_batch_end(first + count - 1, logs)
            if self.model.stop_training:
                break
        return logs

    def _validate(self, epoch: int, logs: dict[str, float]) -> None:
        """The epoch's validation pass, its logs to the callbacks and the curves."""
        self.epoch_logs = dict(logs)
        self.callbacks.on_test_begin()
        val_args = (*_read(self.model)[:2], list(self.fresh_metrics), self.data.x_valid, self.data.y_valid)
        if self.evaluate is None:
            self.evaluate, seconds = _aot(_evaluate(self.model, EVAL_BATCH_SIZE, self.unroll), *val_args)
            self.compile_seconds += seconds
        val_logs = _host(self.evaluate(*val_args))
        self.callbacks.on_test_end(val_logs)
        self.epoch_logs.update({f"val_{key}": value for key, value in val_logs.items()})
        self.callbacks.on_epoch_end(epoch, self.epoch_logs)
        for key in self.curves:
            self.curves[key].append(float(self.epoch_logs.get(key, float("nan"))))
