"""Registered custom layers and losses, plus small block helpers shared by the families.

Everything that ends up inside a saved ``.keras`` file is registered under the
``traffic_sign_search`` package, so ``keras.saving.load_model`` works after ``import spaces``
with no ``custom_objects``. Only ``keras`` / ``keras.ops`` are used on tensors (numpy only for constants),
so the models run under the TensorFlow, JAX and PyTorch backends alike.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

PACKAGE = "traffic_sign_search"


def standardize(x: Any) -> tuple[Any, Any]:
    """Each image of ``x`` (float32, ``(..., H, W, C)``) at zero mean and unit variance, and the
    scale it was multiplied by: ``1 / max(std, 1/sqrt(pixels))``.

    Written as a product with ``rsqrt(max(var, 1/n))`` (the same value): an int8 TFLite model then
    has no division whose quantised divisor can round to zero.
    """
    axes = (-3, -2, -1)
    n = int(np.prod([int(d) for d in x.shape[-3:]]))
    mean = ops.mean(x, axis=axes, keepdims=True)
    scale = ops.rsqrt(ops.maximum(ops.mean(ops.square(x - mean), axis=axes, keepdims=True), 1.0 / n))
    return (x - mean) * scale, scale


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
        out, _ = standardize(ops.cast(inputs, "float32"))
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


LCN_MIN_VARIANCE = 1.0 / 12  # rounding to uint8 adds this variance: less contrast than that is noise


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian of ``size`` taps (odd), the separable factor of the 2-D window."""
    taps = np.arange(size, dtype="float64") - (size - 1) / 2
    window = np.exp(-0.5 * (taps / sigma) ** 2)
    return window / window.sum()


@keras.saving.register_keras_serializable(package=PACKAGE)
class LocalContrastNormalization(keras.layers.Layer):
    """Subtract a Gaussian-weighted local mean, divide by the local standard deviation, per channel.

    The local contrast step of Sermanet & LeCun, "Traffic sign recognition with multi-scale
    convolutional networks" (IJCNN 2011) on GTSRB, subtractive then divisive as in Jarrett et al. (2009):
    with ``m`` the weighted mean over a ``size`` x ``size`` window, ``v = x - m`` and ``s^2`` the weighted
    mean of ``v^2``, the output is ``v / max(s, c)``. A dark or washed-out photo comes out like a well-lit
    one (``a * x + b`` gives the same output for any ``a > 0``); the local mean removes slow lighting
    gradients across the sign, and dividing by ``s`` where it exceeds ``c`` evens out strong edges.
    The floor ``c^2`` is ``floor_share`` times the image's mean ``s^2`` (over pixels and channels), so
    flat regions do not turn noise into contrast. A smaller share would also lift a sign half in shadow
    to the lit half's contrast, but an int8 TFLite model computes ``rsqrt`` from 256 levels spread over
    the variance's whole range, and the small variances it would divide by fall between them. On 300
    GTSRB validation images the int8 layer's output correlated with the float one at 0.995 at share 1,
    0.993 at 0.5, 0.983 at 0.3 and 0.91 at 0.1; a LeNet trained for 3 epochs gave the same class in
    int8 as in float on 97% of 3,033 validation images at share 1, 93% at 0.3, 70% at 0.1 (98% with
    per-image standardisation). An absolute floor, the variance that rounding to uint8 adds (1/12 grey
    level squared), keeps a flat image finite (all zeros).

    Windows are cut off at the border and renormalised (weights over the pixels inside the image sum
    to 1), so border pixels are not darkened by zero padding. The division is a product with
    ``rsqrt(max(var, floor))``, so an int8 TFLite model has no division by a value that rounds to zero.
    """

    def __init__(self, size: int = 7, sigma: float = 2.0, floor_share: float = 1.0, **kwargs: Any) -> None:
        if int(size) < 1 or int(size) % 2 == 0:
            raise ValueError(f"size must be a positive odd number, not {size!r}")
        if not float(sigma) > 0:
            raise ValueError(f"sigma must be > 0, not {sigma!r}")
        if not 0 <= float(floor_share) <= 1:
            raise ValueError(f"floor_share must be in [0, 1], not {floor_share!r}")
        super().__init__(**kwargs)
        self.size, self.sigma, self.floor_share = int(size), float(sigma), float(floor_share)
        self.supports_masking = True

    def _constants(self, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        """The depthwise kernel and ``1 / (weights inside the image)`` per pixel, from the static shape."""
        height, width, channels = (int(d) if d is not None else None for d in shape[-3:])
        if height is None or width is None or channels is None:
            raise ValueError(f"{type(self).__name__} needs a static image shape, got {tuple(shape)}")
        w = gaussian_window(self.size, self.sigma)
        kernel = np.tile(np.outer(w, w)[:, :, None, None], (1, 1, channels, 1)).astype("float32")
        half = self.size // 2

        def inside(n: int) -> np.ndarray:  # weight of the 1-D window that falls inside 0..n-1
            padded = np.convolve(np.ones(n), w, mode="full")
            return padded[half : half + n]

        coverage = np.outer(inside(height), inside(width))
        return kernel, (1.0 / coverage)[None, :, :, None].astype("float32")

    def call(self, inputs: Any) -> Any:
        # Statistics in float32 even under mixed precision: squared 0..255 deviations reach 65,025.
        x = ops.cast(inputs, "float32")
        kernel, inv_coverage = self._constants(tuple(x.shape))
        kernel = ops.convert_to_tensor(kernel, dtype="float32")
        inv_coverage = ops.convert_to_tensor(inv_coverage, dtype="float32")

        def local_mean(t: Any) -> Any:
            return ops.depthwise_conv(t, kernel, strides=1, padding="same") * inv_coverage

        # Standardise the whole image first. The output is the same (the local step ignores any
        # a * x + b; the absolute floor is rescaled with it), but the intermediate tensors then have
        # ranges independent of the photo's lighting, which int8 quantises better: in pixel units a dark
        # photo's local deviations are a few grey levels, near one int8 step of a range calibrated on
        # bright photos (int8-vs-float correlation at floor_share 0.5: 0.993, against 0.977 without).
        z, scale = standardize(x)
        centred = z - local_mean(z)
        var = local_mean(ops.square(centred))
        typical = ops.mean(var, axis=(-3, -2, -1), keepdims=True)
        floor = ops.maximum(typical * self.floor_share, LCN_MIN_VARIANCE * ops.square(scale))
        out = centred * ops.rsqrt(ops.maximum(var, floor))
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "sigma": self.sigma, "floor_share": self.floor_share}


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

    def __init__(
        self, label_smoothing: float = 0.1, name: str = "sparse_label_smoothing_crossentropy", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        n_classes = y_pred.shape[-1]
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        one_hot = ops.one_hot(labels, n_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=False, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def conv_padding(size: int, kernel: int, padding: str) -> str:
    """``padding``, or ``"same"`` where a ``"valid"`` conv would not fit the feature map.

    Lets every point of a space build (deep stacks of valid 5x5 convs would shrink a 32x32
    image to nothing) while leaving the shallow tutorial layouts exactly as written.
    """
    return "same" if padding == "valid" and size < kernel else padding


BN_MOMENTUM = 0.9


def conv_unit(
    x: Any,
    filters: int,
    kernel: int,
    padding: str,
    activation: str,
    batch_norm: bool,
    initializer: str = "glorot_uniform",
    name: str | None = None,
) -> Any:
    """Conv -> (BatchNorm) -> activation. The conv has no bias when batch norm follows it.

    Batch norm uses momentum 0.9 (Keras defaults to 0.99): with Keras' 0.99 the moving statistics
    still lag far behind after a 100-step epoch, so validation accuracy after the first epochs is
    near chance and a pruner judging trials at epoch 1-2 kills exactly the best models.
    """
    size = int(x.shape[1])
    pad = conv_padding(size, kernel, padding)
    x = keras.layers.Conv2D(
        filters, kernel, padding=pad, use_bias=not batch_norm, kernel_initializer=initializer, name=name
    )(x)
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


# -- final-model layers (test-time augmentation, temperature scaling) -------------------------------
# Used by ``search.final.combine`` to make an ensemble / TTA / calibrated model one graph; they live
# here so that ``import spaces`` is all a saved final model needs to load.
TEMPERATURE_EPSILON = 1e-12  # floor inside the log; the numpy side (search.final.calibration) shares it


def _shift_axis(x: Any, shift: int, axis: int, fill: str) -> Any:
    """Move content by ``shift`` pixels along ``axis`` (positive: towards higher indices)."""
    if shift == 0:
        return x
    n = int(x.shape[axis])
    s = min(abs(shift), n)
    index = [slice(None)] * len(x.shape)

    def part(start: int, stop: int) -> Any:
        index[axis] = slice(start, stop)
        return x[tuple(index)]

    if shift > 0:
        kept, edge = part(0, n - s), part(0, 1)
    else:
        kept, edge = part(s, n), part(n - 1, n)
    border = ops.repeat(edge, s, axis=axis)
    if fill == "zero":
        border = ops.zeros_like(border)
    return ops.concatenate([border, kept] if shift > 0 else [kept, border], axis=axis)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Translate(keras.layers.Layer):
    """Fixed translation of NHWC images by ``(dy, dx)`` pixels, for test-time augmentation.

    Output pixel ``(i, j)`` is input pixel ``(i - dy, j - dx)``; uncovered rows / columns repeat the
    border (``fill="edge"``, like the training augmentation's ``fill_mode="nearest"``) or are zero.
    Slices and concatenations only: deterministic, any backend, and exports to ONNX / TFLite.
    Float32 by default so a mixed-precision policy does not round the pixels.
    """

    def __init__(self, dy: int = 0, dx: int = 0, fill: str = "edge", **kwargs: Any) -> None:
        if fill not in ("edge", "zero"):
            raise ValueError(f"fill must be 'edge' or 'zero', not {fill!r}")
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.dy, self.dx, self.fill = int(dy), int(dx), fill

    def call(self, inputs: Any) -> Any:
        x = _shift_axis(inputs, self.dy, -3, self.fill)
        return _shift_axis(x, self.dx, -2, self.fill)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dy": self.dy, "dx": self.dx, "fill": self.fill}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TemperatureScaling(keras.layers.Layer):
    """``softmax(log(p + eps) / T)`` in float32: calibrates probabilities without changing the argmax.

    Works on probabilities (not logits) so it can follow any model or ensemble whose last layer is a
    softmax; ``T > 1`` softens over-confident predictions.
    """

    def __init__(self, temperature: float = 1.0, epsilon: float = TEMPERATURE_EPSILON, **kwargs: Any) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, not {temperature!r}")
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.temperature, self.epsilon = float(temperature), float(epsilon)

    def call(self, inputs: Any) -> Any:
        p = ops.cast(inputs, "float32")
        return ops.softmax(ops.log(p + self.epsilon) / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature, "epsilon": self.epsilon}
