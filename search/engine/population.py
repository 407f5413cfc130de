"""Population training (JAX backend): several trials of one architecture trained as one program.

A LeNet-size model leaves an accelerator mostly idle; per-step dispatch and copies dominate. Trials
that share every shape-determining setting (layers, widths, batch size, augmentation, optimizer
kind, schedule) can instead run as one ``jax.vmap``-ed program whose members differ only in learning
rate, weight decay, label smoothing and seed (HFTA, MLSys'21; vmap-ed ensembles). Each member is a
Keras model of its own, built after its trial's seed was set, with its own callbacks, so each stops,
is pruned, early-stopped and has its best weights restored exactly as in a solo run; per epoch the
members' variables are stacked, trained by compiled chunks of steps (each member on its own
permutation of the device-resident data, as :mod:`.compiled` does for one model), and written back.

The step is written here rather than taken from Keras' ``train_step``, because the per-member values
must be traced arrays: the loss is the sparse cross-entropy with the member's label smoothing
applied to the targets (what ``SparseLabelSmoothingCrossentropy`` computes, and plain sparse
cross-entropy at 0), and the optimizer's decoupled weight decay is the member's, set on the optimizer
only while the step is traced. The learning rate is already per member: it is an optimizer variable.
A member that stops (pruned, early-stopped, capped, NaN) leaves at the next chunk boundary and costs
nothing afterwards: the program is compiled again for the smaller population (once per size).

Not supported: ``mixed_float16`` (its loss scaling), losses other than sparse cross-entropy (a user
space compiled with another loss), and per-batch test callbacks (as in :mod:`.compiled`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import ops

from spaces import common

from ..config import SearchConfig
from ..data import Dataset
from ..errors import UserError
from .compiled import (
    _aot,
    _read,
    _write,
    chunk_plan,
    device_data,
    fold_batches,
    run_steps,
)
from .trainer import EVAL_BATCH_SIZE, TrainClock, TrainingCallbacks, TrainResult

# The settings in which members of one population may differ; every other value is shared.
FREE_PARAMS = ("learning_rate", "weight_decay", "label_smoothing")
# ``--population 0`` (auto) on a CPU: measured with benchmarks/population.py (BENCHMARKS.md,
# "Population training on a CPU"): on 2 cores a population trains no more trials per hour than one
# model at a time, whose convolutions already fill the cores.
AUTO_ON_CPU = 1
# On a GPU/TPU: not yet measured here (benchmarks/gpu.sh measures 1-16); small models use a small
# share of an accelerator, and fused training of 4-16 same-shape models paid 3-15x in HFTA's study.
AUTO_ON_ACCELERATOR = 4


def resolve_population(cfg: SearchConfig) -> int:
    """Members per population for this run's settings and backend (1: trials train one at a time)."""
    requested = int(cfg.population)
    if requested == 1:
        return 1
    backend = keras.backend.backend()
    if backend != "jax":
        if requested == 0:
            return 1
        raise UserError(f"--population {requested} needs the JAX backend (KERAS_BACKEND=jax); this run uses {backend}")
    if cfg.precision == "mixed_float16":
        if requested == 0:
            return 1
        raise UserError("--population: mixed_float16's loss scaling is not supported; use float32 or mixed_bfloat16")
    if cfg.multi_objective and requested == 0:
        return 1
    if requested:
        return requested
    import jax

    return AUTO_ON_CPU if jax.default_backend() == "cpu" else AUTO_ON_ACCELERATOR


def shared_values(values: dict[str, Any]) -> tuple:
    """What must be equal for two trials to train in one population: every value but the free ones."""
    return tuple(sorted((k, repr(v)) for k, v in values.items() if k not in FREE_PARAMS))


@dataclass
class Member:
    """One trial's part of a population: its built model, its values and how it is watched."""

    model: keras.Model
    values: dict[str, Any]
    order_seed: int  # the trial's epoch orders, drawn from its seed as a solo run draws them
    clock: TrainClock = field(default_factory=TrainClock)
    hooks: Sequence[keras.callbacks.Callback] = ()


# -- the member step --------------------------------------------------------------------------------
def smoothed_crossentropy(labels: Any, probabilities: Any, smoothing: Any, class_weights: Any = None) -> Any:
    """Mean cross-entropy of softmax outputs against sparse labels smoothed by ``smoothing`` (a traced
    scalar): ``SparseLabelSmoothingCrossentropy`` with the smoothing as data, not a Python float; each
    image's term weighted by its class's ``class_weights`` entry when given, as ``fit(class_weight=...)``."""
    classes = probabilities.shape[-1]
    sparse = ops.cast(ops.reshape(labels, (-1,)), "int32")
    one_hot = ops.one_hot(sparse, classes, dtype=probabilities.dtype)
    targets = one_hot * (1.0 - smoothing) + smoothing / classes
    terms = keras.losses.categorical_crossentropy(targets, probabilities)
    if class_weights is not None:
        terms = terms * ops.cast(ops.take(class_weights, sparse), terms.dtype)
    return ops.mean(terms)


@contextlib.contextmanager
def _member_weight_decay(optimizer: keras.optimizers.Optimizer, decay: Any) -> Iterator[None]:
    """The optimizer applies ``decay`` (a traced per-member value) while a step is traced; Keras reads
    ``weight_decay`` only inside ``apply``, so its own exclusions (biases, norm scales) still hold."""
    if optimizer.weight_decay is None:  # Adam: no member decays
        yield
        return
    stored = optimizer.weight_decay
    optimizer.weight_decay = decay
    try:
        yield
    finally:
        optimizer.weight_decay = stored


def _sums(loss: Any, probabilities: Any, labels: Any) -> Any:
    """(loss x images, correct, images) of one batch: what an epoch's running averages are made of."""
    count = probabilities.shape[0]
    correct = ops.sum(
        ops.cast(ops.argmax(probabilities, axis=-1) == ops.cast(ops.reshape(labels, (-1,)), "int32"), "float32")
    )
    return ops.stack([ops.cast(loss, "float32") * count, correct, ops.cast(count, "float32")])


def _train_chunk(model: keras.Model, batch_size: int, length: int, unroll: bool, class_weights: Any = None) -> Any:
    """A jitted ``(state, hyper, x, y, perms, first, count) -> state``: ``count`` steps of every member
    (leading axis of ``state``, ``hyper`` and ``perms``) from step ``first`` of the epoch; the state's
    last part is each member's (loss x images, correct, images) so far this epoch."""
    import jax
    import jax.numpy as jnp

    optimizer = model.optimizer
    per_class = None if class_weights is None else jnp.asarray(class_weights)

    def member_step(state: tuple, hyper: tuple, x: Any, y: Any, perm: Any, index: Any) -> tuple:
        trainable, non_trainable, optimizer_vars, sums = state
        decay, smoothing = hyper
        idx = jax.lax.dynamic_slice_in_dim(perm, index * batch_size, batch_size)
        xb, yb = jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)

        def loss_fn(trainable: list) -> tuple:
            probabilities, non_trainable_new, losses = model.stateless_call(
                trainable, non_trainable, xb, training=True, return_losses=True
            )
            loss = smoothed_crossentropy(yb, probabilities, smoothing, per_class)
            if losses:  # layer regularisers, as Keras' own loss adds them
                loss = loss + sum(losses)
            return loss, (probabilities, non_trainable_new)

        (loss, (probabilities, non_trainable)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        with _member_weight_decay(optimizer, decay):
            trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)
        return trainable, non_trainable, optimizer_vars, sums + _sums(loss, probabilities, yb)

    members = jax.vmap(member_step, in_axes=(0, 0, None, None, 0, None))

    def run(state: tuple, hyper: tuple, x: Any, y: Any, perms: Any, first: Any, count: Any) -> tuple:
        return run_steps(lambda j, s: members(s, hyper, x, y, perms, first + j), state, length, count, unroll)

    return jax.jit(run)


def _evaluate(model: keras.Model, batch_size: int, unroll: bool) -> Any:
    """A jitted ``(trainable, non_trainable, smoothing, x, y) -> sums``: each member's validation loss
    (with its smoothing, as ``fit``'s val_loss) and accuracy sums over the whole validation set."""
    import jax

    def member(trainable: list, non_trainable: list, smoothing: Any, x: Any, y: Any) -> Any:
        def batch(total: Any, xb: Any, yb: Any) -> Any:
            probabilities, _, losses = model.stateless_call(
                trainable, non_trainable, xb, training=False, return_losses=True
            )
            loss = smoothed_crossentropy(yb, probabilities, smoothing)
            return total + _sums(loss + sum(losses) if losses else loss, probabilities, yb)

        return fold_batches(batch, ops.zeros((3,), "float32"), x, y, batch_size, unroll)

    return jax.jit(jax.vmap(member, in_axes=(0, 0, 0, None, None)))


def _logs(sums: Any) -> dict[str, float]:
    loss, correct, count = (float(v) for v in sums)
    return {"loss": loss / max(count, 1.0), "accuracy": correct / max(count, 1.0)}


# -- training ---------------------------------------------------------------------------------------
class _Compiled:
    """The population's compiled chunk and validation pass, one of each per population size."""

    def __init__(
        self, model: keras.Model, batch: int, length: int, unroll: bool, class_weights: np.ndarray | None = None
    ) -> None:
        self.model, self.batch, self.length, self.unroll = model, batch, length, unroll
        self.class_weights = class_weights
        self.chunks: dict[int, Any] = {}
        self.evaluations: dict[int, Any] = {}
        self.seconds = 0.0

    def chunk(self, size: int, *args: Any) -> Any:
        if size not in self.chunks:
            self.chunks[size], seconds = _aot(
                _train_chunk(self.model, self.batch, self.length, self.unroll, self.class_weights), *args
            )
            self.seconds += seconds
        return self.chunks[size](*args)

    def evaluate(self, size: int, *args: Any) -> Any:
        if size not in self.evaluations:
            fn = _evaluate(self.model, EVAL_BATCH_SIZE, self.unroll)
            self.evaluations[size], seconds = _aot(fn, *args)
            self.seconds += seconds
        return self.evaluations[size](*args)


def _stack(parts: list[list]) -> list:
    import jax.numpy as jnp

    return [jnp.stack(values) for values in zip(*parts)]


def _take(state: Any, rows: list[int]) -> Any:
    import jax
    import jax.numpy as jnp

    index = jnp.asarray(rows)
    return jax.tree_util.tree_map(lambda a: a[index], state)


def _row(state: tuple, row: int) -> tuple:
    """One member's (trainable, non-trainable, optimizer) values out of the stacked state."""
    return tuple([a[row] for a in part] for part in state[:3])


def train_population(
    members: Sequence[Member],
    dataset: Dataset,
    *,
    epochs: int,
    patience: int,
    chunk_steps: int | None = None,
    unroll: bool | None = None,
) -> list[TrainResult]:
    """Train every member as ``engines.train_model`` would train it alone (same callbacks, stop
    reasons, curves and restored best weights), all in one compiled program; one result per member.

    Members must share every value but ``FREE_PARAMS`` (see ``shared_values``). A member's
    ``seconds`` is its share of the population's wall time (each stretch split evenly among the
    members training in it), so the members' seconds add up to what the population cost, as solo
    trials' seconds add up to a search's; ``compile_seconds`` is the whole population's compilation,
    which every member waited for.
    """
    if len({shared_values(m.values) for m in members}) != 1:
        raise ValueError("population members differ in more than " + ", ".join(FREE_PARAMS))
    return _PopulationRun(
        members, dataset, epochs=epochs, patience=patience, chunk_steps=chunk_steps, unroll=unroll
    ).train()


class _PopulationRun:
    """One population's training: the members' callbacks and compiled program set up once, then the
    epochs, each member leaving the program when its own callbacks stop it."""

    def __init__(
        self,
        members: Sequence[Member],
        dataset: Dataset,
        *,
        epochs: int,
        patience: int,
        chunk_steps: int | None,
        unroll: bool | None,
    ) -> None:
        import jax

        self.members, self.epochs = members, epochs
        settings = [common.training_settings(m.values) for m in members]
        self.data = device_data(dataset)
        self.n = len(dataset.train)
        batch = min(settings[0].batch_size, self.n)
        self.steps = self.n // batch
        unroll, self.length = chunk_plan(self.steps, chunk_steps, unroll)
        weights = common.class_weights(dataset.train.labels, dataset.n_classes, settings[0].class_balance)  # shared
        self.compiled = _Compiled(members[0].model, batch, self.length, unroll, weights)
        self.runs = [
            TrainingCallbacks.for_run(s, epochs=epochs, patience=patience, deadline=m.clock, hooks=m.hooks)
            for s, m in zip(settings, members)
        ]
        self.lists = [
            keras.callbacks.CallbackList(
                r.callbacks, add_history=True, add_progbar=False, epochs=epochs, steps=self.steps, model=m.model
            )
            for r, m in zip(self.runs, members)
        ]
        sample = (dataset.train.features[:batch], dataset.train.labels[:batch])
        for m in members:
            m.model._symbolic_build(data_batch=sample)  # the optimizer's variables, as fit builds them
            m.model.stop_training = False
        self.keys = [jax.random.key(m.order_seed) for m in members]
        self.decays = [float(m.values.get("weight_decay") or 0.0) for m in members]
        self.smoothings = [float(m.values.get("label_smoothing") or 0.0) for m in members]
        self.histories: list[dict[str, list[float]]] = [
            {"val_accuracy": [], "accuracy": [], "val_loss": []} for _ in members
        ]
        self.last_logs: list[dict[str, float]] = [{} for _ in members]
        self.meter = _Meter(len(members))
        self.active = list(range(len(members)))
        self.state: tuple | None = None

    def train(self) -> list[TrainResult]:
        for callbacks in self.lists:
            callbacks.on_train_begin()
        try:
            for epoch in range(self.epochs):
                self.active = [i for i in self.active if not self.members[i].model.stop_training]
                if not self.active:
                    break
                self._epoch(epoch)
        finally:
            if self.state is not None:  # an exception inside an epoch: keep what was trained, as fit does
                for row, i in enumerate(self.active):
                    _write(self.members[i].model, _row(self.state, row))
            for m in self.members:
                m.model.optimizer.finalize_variable_values(m.model.trainable_weights)
        results = []
        for i in range(len(self.members)):
            self.lists[i].on_train_end(logs=self.last_logs[i])  # early stopping restores the best epoch's weights
            results.append(self.runs[i].result(self.histories[i], self.meter.seconds[i], self.compiled.seconds))
        return results

    def _epoch(self, epoch: int) -> None:
        """One epoch of the active members, a compiled chunk at a time; a member stopped mid-epoch (cap,
        NaN, Ctrl-C) closes its epoch and leaves the program at once."""
        import jax
        import jax.numpy as jnp

        active = self.active
        for i in active:
            self.lists[i].on_epoch_begin(epoch)  # each member's schedule sets its learning rate here
        # Read after the callbacks, as fit does: what they assigned (the learning rate) counts.
        reads = [_read(self.members[i].model) for i in active]
        self.state = (*(_stack([r[p] for r in reads]) for p in range(3)), jnp.zeros((len(active), 3), "float32"))
        hyper = (jnp.asarray([self.decays[i] for i in active]), jnp.asarray([self.smoothings[i] for i in active]))
        perms = jnp.stack([jax.random.permutation(jax.random.fold_in(self.keys[i], epoch), self.n) for i in active])
        train_logs: list[dict] = [{} for _ in active]
        for first in range(0, self.steps, self.length):
            count = min(self.length, self.steps - first)
            for i in self.active:
                self.lists[i].on_train_batch_begin(first)
            data = (self.data.x_train, self.data.y_train, perms, jnp.int32(first), jnp.int32(count))
            self.state = self.compiled.chunk(len(self.active), self.state, hyper, *data)
            sums = jax.device_get(self.state[3])  # waits for the chunk: caps and Ctrl-C act per chunk
            self.meter.charge(self.active)
            train_logs = [_logs(row) for row in sums]
            for row, i in enumerate(self.active):
                self.lists[i].on_train_batch_end(first + count - 1, train_logs[row])
            leaving = [row for row, i in enumerate(self.active) if self.members[i].model.stop_training]
            if leaving and first + count < self.steps:  # stopped mid-epoch: out now
                self._end_epoch(
                    epoch,
                    [self.active[row] for row in leaving],
                    _take(self.state, leaving),
                    [train_logs[row] for row in leaving],
                )
                keep = [row for row in range(len(self.active)) if row not in leaving]
                self.active = [self.active[row] for row in keep]
                if not self.active:
                    self.state = None
                    return
                self.state, hyper, perms = _take(self.state, keep), _take(hyper, keep), perms[jnp.asarray(keep)]
                train_logs = [train_logs[row] for row in keep]
        self._end_epoch(epoch, self.active, self.state, train_logs)
        self.state = None

    def _end_epoch(self, epoch: int, group: list[int], state: tuple, train_logs: list[dict]) -> None:
        """Write the group's trained state back, validate it, and close its epoch."""
        import jax
        import jax.numpy as jnp

        for row, i in enumerate(group):
            _write(self.members[i].model, _row(state, row))
        val_args = (
            *(_stack([_read(self.members[i].model)[p] for i in group]) for p in (0, 1)),
            jnp.asarray([self.smoothings[i] for i in group]),
            self.data.x_valid,
            self.data.y_valid,
        )
        val = jax.device_get(self.compiled.evaluate(len(group), *val_args))
        for row, i in enumerate(group):
            val_logs = _logs(val[row])
            self.lists[i].on_test_begin()
            self.lists[i].on_test_end(val_logs)
            logs = {**train_logs[row], **{f"val_{k}": v for k, v in val_logs.items()}}
            self.lists[i].on_epoch_end(epoch, logs)
            self.last_logs[i] = logs
            for key in self.histories[i]:
                self.histories[i][key].append(float(logs.get(key, float("nan"))))
        self.meter.charge(group)


class _Meter:
    """Each member's share of the population's wall time: a stretch is split evenly among the
    members that trained or validated in it."""

    def __init__(self, n: int) -> None:
        self.seconds = [0.0] * n
        self.last = time.monotonic()

    def charge(self, group: Sequence[int]) -> None:
        now = time.monotonic()
        for i in group:
            self.seconds[i] += (now - self.last) / len(group)
        self.last = now
