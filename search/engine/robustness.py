"""A robustness score for a trial: accuracy on a photometrically perturbed copy of the validation images.

On GTSRB validation accuracy saturates (99.7-99.9%, trials a few images apart), while the final
model's test errors gather on dark and low-contrast photos. Scoring each trial's best weights on a
darkened / washed-out / gamma-shifted copy of the validation images measures exactly that weakness
and gives equal accuracies something to be told apart by (``SearchConfig.tie_break = "robust"``).

The copy is data, not augmentation: one fixed seed, so every trial, worker and resumed run of a study
is scored on the same images, and it is made once per process (the last one is kept).
"""

from __future__ import annotations

import numpy as np

ROBUST_SEED = 0
EVAL_BATCH_SIZE = 1024
# Per-image strength ranges of the three perturbations, and of the noise added to each.
DARKEN = (0.3, 0.6)  # pixels scaled by this
LOW_CONTRAST = (0.4, 0.7)  # share of the blend towards the image's mean (per channel)
GAMMA = (1.8, 2.5)  # 255 * (x / 255) ** gamma: darker mid-tones, like an under-exposed photo
NOISE_STD = (0.5, 2.0)  # mild Gaussian sensor noise, grey levels


def perturbed_copy(images: np.ndarray, seed: int = ROBUST_SEED) -> np.ndarray:
    """A deterministic photometric perturbation of uint8 ``(N, H, W, C)`` images, uint8 out.

    Each image gets one of: darkening, low contrast, gamma; each with mild noise. A numpy Generator
    seeded with ``seed`` chooses the kind and strengths, so the same seed gives the same copy.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
    rng = np.random.default_rng(seed)
    n = len(images)
    kind = rng.integers(0, 3, size=n)
    share = rng.uniform(0.0, 1.0, size=n)  # where in its kind's range each image's strength lies
    noise_std = rng.uniform(*NOISE_STD, size=n)
    noise = rng.standard_normal(images.shape, dtype=np.float32)
    x = images.astype(np.float32)
    out = np.empty_like(x)

    def strength(bounds: tuple[float, float], pick: np.ndarray) -> np.ndarray:
        lo, hi = bounds
        return (lo + (hi - lo) * share[pick])[:, None, None, None].astype(np.float32)

    dark, flat, gamma = (kind == 0), (kind == 1), (kind == 2)
    out[dark] = x[dark] * strength(DARKEN, dark)
    mean = x[flat].mean(axis=(1, 2), keepdims=True)
    out[flat] = x[flat] + (mean - x[flat]) * strength(LOW_CONTRAST, flat)
    out[gamma] = 255.0 * (x[gamma] / 255.0) ** strength(GAMMA, gamma)
    out += noise * noise_std[:, None, None, None].astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


_cache: tuple[np.ndarray, int, np.ndarray] | None = None  # (source, seed, copy): one split per process


def cached_perturbed_copy(images: np.ndarray, seed: int = ROBUST_SEED) -> np.ndarray:
    """``perturbed_copy`` made once per process for the same array (the loaded validation split).

    Keyed by identity, not content: the split is loaded once per process, and the cache holds the
    source array, so its id cannot be reused by another array while the entry lives.
    """
    global _cache
    if _cache is None or _cache[0] is not images or _cache[1] != seed:
        _cache = (images, seed, perturbed_copy(images, seed))
    return _cache[2]


def robust_accuracy(model: object, images: np.ndarray, labels: np.ndarray, seed: int = ROBUST_SEED) -> float:
    """Accuracy of a Keras ``model`` (probabilities out) on the perturbed copy of ``images``."""
    perturbed = cached_perturbed_copy(images, seed)
    if len(perturbed) == 0:
        return float("nan")
    probs = model.predict(perturbed, batch_size=EVAL_BATCH_SIZE, verbose=0)  # type: ignore[attr-defined]
    return float(np.mean(np.argmax(probs, axis=-1) == np.asarray(labels).reshape(-1)))
