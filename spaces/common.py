"""What every family shares: the in-model front end, the training knobs and the model assembly.

The front end (augmentation, grayscale, normalisation) lives inside the model so it runs on the
accelerator and a saved ``.keras`` needs no extra code; it takes raw 0..255 pixels. Training knobs
(optimiser, learning rate, schedule, batch size, label smoothing) are declared through the same
``hp`` so one values dict describes a whole trial; the trainer reads the non-layer ones back with
:func:`training_settings`. These parameters are top-level in every space, also in ``all``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from spaces.hp import ValuesHyperParameters
from spaces.layers import (
    Grayscale,
    LocalContrastNormalization,
    PerImageStandardization,
    SparseLabelSmoothingCrossentropy,
)

ArchParams = Callable[[Any], dict[str, Any]]
BuildArch = Callable[[dict[str, Any], Any], Any]

OPTIMIZERS = ("adam", "adamw", "sgd")
BATCH_SIZES = (32, 64, 128, 256)
PREPROCESSING = ("standardize", "scale")


# -- declarations -----------------------------------------------------------------------------------
def front_end_params(hp: Any) -> dict[str, Any]:
    """Declare preprocessing and augmentation; magnitudes exist only while ``augment`` is on."""
    # Local contrast normalisation (dark, washed-out photos) replaces the global normalisation. It is
    # a parameter of its own, not a third ``preprocessing`` choice: Optuna refuses a categorical whose
    # choices changed, so a study made before it existed could not be resumed.
    p: dict[str, Any] = {"local_contrast": hp.Boolean("local_contrast", default=False)}
    with hp.conditional_scope("local_contrast", [False]):
        p["preprocessing"] = hp.Choice("preprocessing", list(PREPROCESSING), default="standardize")
    p["grayscale"] = hp.Boolean("grayscale", default=False)
    p["augment"] = hp.Boolean("augment", default=True)
    with hp.conditional_scope("augment", [True]):
        # Degrees; signs are seldom tilted more than ~15 degrees in GTSRB.
        p["aug_rotation"] = hp.Float("aug_rotation", 0.0, 20.0, step=5.0, default=10.0)
        # Fractions of the image size; GTSRB crops are loose and not centred exactly.
        p["aug_translate"] = hp.Float("aug_translate", 0.0, 0.2, step=0.05, default=0.1)
        p["aug_zoom"] = hp.Float("aug_zoom", 0.0, 0.2, step=0.05, default=0.1)
        # Lighting is the largest nuisance factor across tracks.
        p["aug_brightness"] = hp.Float("aug_brightness", 0.0, 0.4, step=0.1, default=0.2)
        p["aug_contrast"] = hp.Float("aug_contrast", 0.0, 0.4, step=0.1, default=0.2)
    return p


def training_params(hp: Any) -> dict[str, Any]:
    """Declare the optimiser, loss and fit settings (not layers, but part of every trial)."""
    p: dict[str, Any] = {"optimizer": hp.Choice("optimizer", list(OPTIMIZERS), default="adam")}
    # One range for all optimisers: SGD+Nesterov works at its top end, Adam at the middle.
    p["learning_rate"] = hp.Float("learning_rate", 1e-4, 3e-2, sampling="log", default=1e-3)
    with hp.conditional_scope("optimizer", ["adamw", "sgd"]):
        # Decoupled (per-step ``lr * wd``) weight decay, Keras' optimiser ``weight_decay``.
        p["weight_decay"] = hp.Float("weight_decay", 1e-5, 1e-1, sampling="log", default=5e-3)
    p["label_smoothing"] = hp.Float("label_smoothing", 0.0, 0.2, step=0.05, default=0.1)
    p["batch_size"] = hp.Choice("batch_size", list(BATCH_SIZES), default=64)
    p["lr_schedule"] = hp.Choice("lr_schedule", ["cosine", "constant"], default="cosine")
    # GTSRB's classes run from 180 to 2,010 training images; the rarest were the most missed on test
    # (Pedestrians 76%). Weighting each image's loss by its class count ** -power evens that out.
    p["class_balance"] = hp.Choice("class_balance", list(CLASS_BALANCE), default="none")
    return p


def declare(hp: Any, arch_params: ArchParams) -> dict[str, Any]:
    """Declare a whole space (front end, architecture, training) without building anything."""
    return {"front": front_end_params(hp), "arch": arch_params(hp), "train": training_params(hp)}


def declared_names(arch_params: ArchParams) -> list[str]:
    """Names ``arch_params`` declares, conditional ones included, in declaration order."""
    hp = ValuesHyperParameters()
    arch_params(hp)
    return list(hp.space)


def default_point(declare_space: Callable[[Any], Any]) -> dict[str, Any]:
    """The complete values dict that a space's defaults resolve to (a point to enqueue)."""
    hp = ValuesHyperParameters()
    declare_space(hp)
    return dict(hp.values)


def shared_names() -> list[str]:
    """Names of the parameters every space shares (front end and training)."""
    hp = ValuesHyperParameters()
    front_end_params(hp)
    training_params(hp)
    return list(hp.space)


# -- front end ------------------------------------------------------------------------------------
def apply_front_end(p: dict[str, Any], x: Any) -> Any:
    """Augment (training only) on 0..255 pixels, then grayscale and normalise.

    No flips: they turn "keep left" into "keep right". All layers are parameter-free.
    """
    if p["augment"]:
        if p["aug_rotation"]:
            x = keras.layers.RandomRotation(p["aug_rotation"] / 360.0, fill_mode="nearest")(x)
        if p["aug_translate"]:
            t = p["aug_translate"]
            x = keras.layers.RandomTranslation(t, t, fill_mode="nearest")(x)
        if p["aug_zoom"]:
            z = p["aug_zoom"]
            x = keras.layers.RandomZoom((-z, z), (-z, z), fill_mode="nearest")(x)
        if p["aug_brightness"]:
            x = keras.layers.RandomBrightness(p["aug_brightness"], value_range=(0, 255))(x)
        if p["aug_contrast"]:
            x = keras.layers.RandomContrast(p["aug_contrast"], value_range=(0, 255))(x)
    if p["grayscale"]:
        x = Grayscale()(x)
    if p["local_contrast"]:
        return LocalContrastNormalization()(x)
    if p["preprocessing"] == "standardize":
        return PerImageStandardization()(x)
    return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(x)


# -- training -------------------------------------------------------------------------------------
def make_optimizer(p: dict[str, Any]) -> keras.optimizers.Optimizer:
    """Optimiser from the declared training params; biases and norm scales are not decayed."""
    lr = p["learning_rate"]
    if p["optimizer"] == "adam":
        return keras.optimizers.Adam(lr)
    if p["optimizer"] == "adamw":
        opt = keras.optimizers.AdamW(lr, weight_decay=p["weight_decay"])
    elif p["optimizer"] == "sgd":
        opt = keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=p["weight_decay"])
    else:
        raise ValueError(f"unknown optimizer {p['optimizer']!r}; choose from {', '.join(OPTIMIZERS)}")
    opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


def make_loss(p: dict[str, Any]) -> keras.losses.Loss:
    """Plain sparse cross-entropy, or the registered smoothing variant when smoothing > 0."""
    if p["label_smoothing"]:
        return SparseLabelSmoothingCrossentropy(p["label_smoothing"])
    return keras.losses.SparseCategoricalCrossentropy()


def compile_model(model: keras.Model, p: dict[str, Any]) -> keras.Model:
    """Compile with the contract's metric name (``accuracy``) so the search can read it."""
    model.compile(
        optimizer=make_optimizer(p),
        loss=make_loss(p),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


@dataclass(frozen=True)
class TrainingSettings:
    """The trial settings that are arguments of ``fit`` rather than parts of the model."""

    batch_size: int
    learning_rate: float
    lr_schedule: str
    class_balance: str = "none"


# class_balance: the power of a class's training-image count its images' loss weight is divided by
CLASS_BALANCE = {"none": 0.0, "sqrt": 0.5, "full": 1.0}


def class_weights(labels: np.ndarray, n_classes: int, balance: str) -> np.ndarray | None:
    """Loss weight per class, ``count ** -power`` scaled to a mean of 1 over the training images (so the
    learning rate means what it meant unweighted); None for ``none``."""
    power = CLASS_BALANCE[balance]
    if not power or len(labels) == 0:
        return None
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    return (weights / weights[labels].mean()).astype(np.float32)


def training_settings(values: dict[str, Any]) -> TrainingSettings:
    """Settings from a (possibly partial) values dict; missing ones take the space defaults."""
    p = training_params(ValuesHyperParameters(values))
    return TrainingSettings(
        batch_size=int(p["batch_size"]),
        learning_rate=float(p["learning_rate"]),
        lr_schedule=str(p["lr_schedule"]),
        class_balance=str(p["class_balance"]),
    )


def cosine_lr(base: float, epoch: int, epochs: int) -> float:
    """Cosine decay from ``base`` at epoch 0 towards 0 at ``epochs`` (never exactly 0)."""
    return base * 0.5 * (1.0 + math.cos(math.pi * min(epoch, epochs) / max(epochs, 1)))


def lr_callback(
    settings: TrainingSettings, epochs: int, horizon: Callable[[int], int] | None = None
) -> keras.callbacks.Callback | None:
    """Per-epoch learning-rate callback for the schedule, or ``None`` for a constant rate.

    ``horizon(epoch)`` is the epoch count the cosine anneals over, asked at the start of each
    (0-based) epoch; by default ``epochs``. A run that a time cap will stop early passes fewer, so
    it still ends at a low learning rate instead of being cut off mid-schedule.
    """
    if settings.lr_schedule == "constant":
        return None
    if settings.lr_schedule != "cosine":
        raise ValueError(f"unknown lr_schedule {settings.lr_schedule!r}; choose from cosine, constant")
    base = settings.learning_rate
    span = horizon or (lambda epoch: epochs)
    return keras.callbacks.LearningRateScheduler(lambda epoch, lr=None: cosine_lr(base, epoch, span(epoch)))


# -- assembly ---------------------------------------------------------------------------------------
def classifier(x: Any, n_classes: int) -> Any:
    """Final dense layer; softmax in float32 so mixed precision keeps a stable loss."""
    x = keras.layers.Dense(n_classes, name="logits")(x)
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def build_model(
    hp: Any,
    input_shape: tuple[int, int, int],
    n_classes: int,
    arch_params: ArchParams,
    build_arch: BuildArch,
    name: str,
) -> keras.Model:
    """Declare everything on ``hp``, then build and compile the model the values describe."""
    p = declare(hp, arch_params)
    inputs = keras.Input(shape=tuple(input_shape), dtype="float32", name="pixels")
    x = apply_front_end(p["front"], inputs)
    x = build_arch(p["arch"], x)
    model = keras.Model(inputs, classifier(x, n_classes), name=name)
    return compile_model(model, p["train"])
