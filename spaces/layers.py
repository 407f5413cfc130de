"""Registered custom layers and losses, plus small block helpers shared by the families.

Everything that ends up inside a saved ``.keras`` file is registered under the
``traffic_sign_search`` package, so ``keras.saving.load_model`` works after ``import spaces``
with no ``custom_objects``. Only ``keras`` / ``keras.ops`` are used, so the models run under the
TensorFlow, JAX and PyTorch backends alike.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import ops

PACKAGE = "traffic_sign_search"


@keras.saving.register_keras_serializable(package=PACKAGE)
class PerImageStandardization(keras.layers.Layer):
    """Per-image zero mean / unit variance, like ``tf.image.per_image_standardization``.

    Removes each photo's global brightness and contrast, which vary a lot across GTSRB tracks.
    The standard deviation is floored at ``1/sqrt(pixels)`` so flat images do not blow up.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any) -> Any:
        # Statistics in float32 even under mixed precision: squared 0..255 deviations reach 65,025.
        x = ops.cast(inputs, "float32")
        axes = (-3, -2, -1)
        mean = ops.mean(x, axis=axes, keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=axes, keepdims=True)
        n = 1
        for d in x.shape[-3:]:
            n *= int(d)
        out = (x - mean) / ops.maximum(ops.sqrt(var), 1.0 / (n ** 0.5))
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class Grayscale(keras.layers.Layer):
    """RGB -> one luma channel (ITU-R 601 weights).

    Sign classes differ by shape far more than by colour; grayscale halves the first conv's
    input and is the classic GTSRB trick (Sermanet & LeCun 2011).
    """

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, self.compute_dtype)
        weights = ops.convert_to_tensor([0.299, 0.587, 0.114], dtype=x.dtype)
        return ops.sum(x * weights, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SparseLabelSmoothingCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing for sparse integer labels.

    Keras' ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; the labels here are
    uint8 class ids, so they are one-hot encoded on the fly (class count taken from ``y_pred``).
    """

    def __init__(self, label_smoothing: float = 0.1, name: str = "sparse_label_smoothing_crossentropy",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        n_classes = y_pred.shape[-1]
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        one_hot = ops.one_hot(labels, n_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=False, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def conv_padding(size: int, kernel: int, padding: str) -> str:
    """``padding``, or ``"same"`` where a ``"valid"`` conv would not fit the feature map.

    Lets every point of a space build (deep stacks of valid 5x5 convs would shrink a 32x32
    image to nothing) while leaving the shallow tutorial layouts exactly as written.
    """
    return "same" if padding == "valid" and size < kernel else padding


BN_MOMENTUM = 0.9


def conv_unit(x: Any, filters: int, kernel: int, padding: str, activation: str, batch_norm: bool,
              initializer: str = "glorot_uniform", name: str | None = None) -> Any:
    """Conv -> (BatchNorm) -> activation. The conv has no bias when batch norm follows it.

    Batch norm uses momentum 0.9 (Keras defaults to 0.99): with Keras' 0.99 the moving statistics
    still lag far behind after a 100-step epoch, so validation accuracy after the first epochs is
    near chance and a pruner judging trials at epoch 1-2 kills exactly the best models.
    """
    size = int(x.shape[1])
    pad = conv_padding(size, kernel, padding)
    x = keras.layers.Conv2D(filters, kernel, padding=pad, use_bias=not batch_norm,
                            kernel_initializer=initializer, name=name)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return keras.layers.Activation(activation)(x)


def pool(x: Any, kind: str = "max") -> Any:
    """2x2 pooling, skipped once the map is 1 pixel wide (deep stacks on 32x32 inputs)."""
    if int(x.shape[1]) < 2:
        return x
    layer = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    return layer(2)(x)


def dropout(x: Any, rate: float | None) -> Any:
    """Dropout, or nothing when the rate is 0 / None (keeps the graph and summaries small)."""
    return keras.layers.Dropout(rate)(x) if rate else x
