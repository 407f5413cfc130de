"""The tutorial's LeNet variant, generalised: four convs, two or three poolings, a two-layer head.

Layout (tutorial values in brackets): conv0 [5] -> conv1 [16] -> pool -> dropout [0.5] ->
conv2 [32] -> pool -> dropout [0.5] -> conv3 [100] -> (pool, off in the tutorial) -> (dropout)
-> flatten -> dense0 [168] -> (dropout) -> dense1 [84] -> dropout [0.2] -> dense 43.
With 3x3 kernels and valid/valid/valid/same padding this is the tutorial's 657,235 parameters
(flatten 6x6x100 = 3,600). The defaults (``POINTS["modern"]``) keep the layout but widen it and
add batch norm, augmentation, label smoothing and a cosine schedule.
"""

from __future__ import annotations

from typing import Any

import keras

from spaces import common
from spaces.layers import conv_unit, dropout, pool

NAME = "lenet"
# (min, max, default) per conv; conv3 stays <= 128 so the flatten (at most 8x8x128) is bounded.
FILTERS = ((4, 32, 16), (8, 64, 32), (16, 128, 64), (32, 128, 128))
PARAM_CEILING = 4_000_000  # largest layout: 32-64-128-128 5x5 same convs, no 3rd pool, 384-192 head


def arch_params(hp: Any) -> dict[str, Any]:
    """Declare the architecture; the dropout after the third pool exists only with that pool."""
    p: dict[str, Any] = {"filters": [], "kernel": [], "padding": []}
    for i, (lo, hi, default) in enumerate(FILTERS):
        p["filters"].append(hp.Int(f"filters_{i}", lo, hi, default=default))
        p["kernel"].append(hp.Choice(f"kernel_{i}", [3, 5], default=3))
        p["padding"].append(hp.Choice(f"padding_{i}", ["same", "valid"], default="same"))
    p["conv_dropout_0"] = hp.Float("conv_dropout_0", 0.0, 0.5, step=0.1, default=0.0)
    p["conv_dropout_1"] = hp.Float("conv_dropout_1", 0.0, 0.5, step=0.1, default=0.0)
    p["pool_3"] = hp.Boolean("pool_3", default=True)
    with hp.conditional_scope("pool_3", [True]):
        p["conv_dropout_2"] = hp.Float("conv_dropout_2", 0.0, 0.5, step=0.1, default=0.0)
    p["units_0"] = hp.Int("units_0", 64, 384, step=8, default=256)
    p["dense_dropout_0"] = hp.Float("dense_dropout_0", 0.0, 0.5, step=0.1, default=0.0)
    p["units_1"] = hp.Int("units_1", 32, 192, step=4, default=128)
    p["dense_dropout_1"] = hp.Float("dense_dropout_1", 0.0, 0.5, step=0.1, default=0.0)
    p["initializer"] = hp.Choice("initializer", ["glorot_uniform", "he_normal", "he_uniform"], default="he_normal")
    p["batch_norm"] = hp.Boolean("batch_norm", default=True)
    p["activation"] = hp.Choice("activation", ["relu", "elu", "gelu"], default="relu")
    return p


def build_arch(p: dict[str, Any], x: Any) -> Any:
    """The LeNet trunk and head (features for the classifier)."""

    def conv(x: Any, i: int) -> Any:
        return conv_unit(
            x,
            p["filters"][i],
            p["kernel"][i],
            p["padding"][i],
            p["activation"],
            p["batch_norm"],
            initializer=p["initializer"],
        )

    x = conv(conv(x, 0), 1)
    x = dropout(pool(x), p["conv_dropout_0"])
    x = dropout(pool(conv(x, 2)), p["conv_dropout_1"])
    x = conv(x, 3)
    if p["pool_3"]:
        x = dropout(pool(x), p["conv_dropout_2"])
    x = keras.layers.Flatten()(x)
    for j in range(2):
        x = keras.layers.Dense(p[f"units_{j}"], activation=p["activation"], kernel_initializer=p["initializer"])(x)
        x = dropout(x, p[f"dense_dropout_{j}"])
    return x


def declare(hp: Any) -> dict[str, Any]:
    """Declare the whole space on ``hp`` (no model is built)."""
    return common.declare(hp, arch_params)


def build(hp: Any, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """The compiled model for ``hp``'s values (defaults where none are given)."""
    return common.build_model(hp, input_shape, n_classes, arch_params, build_arch, NAME)


def family_of(values: dict[str, Any]) -> str:
    """Always this family."""
    return NAME


POINTS: dict[str, dict[str, Any]] = {
    # The tutorial's LeNet and training, exactly (657,235 parameters).
    "tutorial": {
        "local_contrast": False,
        "preprocessing": "scale",
        "grayscale": False,
        "augment": False,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "label_smoothing": 0.0,
        "batch_size": 32,
        "lr_schedule": "constant",
        "class_balance": "none",
        "filters_0": 5,
        "filters_1": 16,
        "filters_2": 32,
        "filters_3": 100,
        "kernel_0": 3,
        "kernel_1": 3,
        "kernel_2": 3,
        "kernel_3": 3,
        "padding_0": "valid",
        "padding_1": "valid",
        "padding_2": "valid",
        "padding_3": "same",
        "conv_dropout_0": 0.5,
        "conv_dropout_1": 0.5,
        "pool_3": False,
        "units_0": 168,
        "dense_dropout_0": 0.0,
        "units_1": 84,
        "dense_dropout_1": 0.2,
        "initializer": "glorot_uniform",
        "batch_norm": False,
        "activation": "relu",
    },
}
# The space's defaults as a complete point (~93% validation after 8 epochs on the real sample).
POINTS["modern"] = common.default_point(declare)
