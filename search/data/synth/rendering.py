"""One synthetic photo of a sign: a template coloured, warped, set in clutter and degraded.

What makes the data set hard in the way GTSRB is hard lives here: random viewpoint (a homography
with rotation and perspective), backgrounds with stray signs and poles, occluders, uneven light,
and a camera model (saturation, exposure, colour cast, gamma, resolution and motion blur, noise).
Every random draw comes from the caller's generator, in a fixed order, so a seed fixes the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .drawing import _BASE_PAINTS, N_PAINTS
from .signs import _Templates


@dataclass(frozen=True)
class _Grids:
    """Sampling grids for one output size, computed once."""

    size: int
    fine: np.ndarray  # (3, (2S)^2) homogeneous normalised canvas coords of the 2x samples
    xs: np.ndarray  # (S, S) normalised canvas x of output pixel centres
    ys: np.ndarray  # (S, S)
    pix: np.ndarray  # (S,) pixel indices, for blur matrices


@lru_cache(maxsize=4)
def _grids(size: int) -> _Grids:
    f = (np.arange(2 * size) + 0.5) / (2 * size)
    fx, fy = np.meshgrid(f, f)
    fine = np.stack([fx.ravel(), fy.ravel(), np.ones(fx.size)])
    c = (np.arange(size) + 0.5) / size
    xs, ys = np.meshgrid(c, c)
    return _Grids(size, fine, xs, ys, np.arange(size, dtype=float))


@lru_cache(maxsize=16)
def _upsampler(size: int, g: int) -> np.ndarray:
    """(size, g) bilinear interpolation matrix: a g x g random field to a smooth size x size one."""
    pos = (np.arange(size) + 0.5) / size * (g - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, g - 2)
    frac = pos - lo
    m = np.zeros((size, g))
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m


# background themes: (top colour, bottom colour, blob colours, fine texture strength); in order:
# sky, overcast, foliage, urban, dark, dry field
_THEMES: tuple[tuple[tuple[float, ...], tuple[float, ...], tuple[tuple[float, ...], ...], float], ...] = (
    ((0.45, 0.62, 0.88), (0.78, 0.84, 0.92), ((0.95, 0.95, 0.97), (0.2, 0.35, 0.15), (0.55, 0.55, 0.55)), 0.015),
    ((0.72, 0.74, 0.77), (0.52, 0.54, 0.56), ((0.85, 0.85, 0.85), (0.3, 0.32, 0.3), (0.25, 0.38, 0.2)), 0.015),
    ((0.16, 0.3, 0.12), (0.3, 0.42, 0.2), ((0.08, 0.15, 0.06), (0.45, 0.55, 0.25), (0.35, 0.26, 0.16)), 0.07),
    ((0.46, 0.42, 0.4), (0.3, 0.3, 0.3), ((0.55, 0.26, 0.2), (0.78, 0.72, 0.6), (0.15, 0.15, 0.17)), 0.035),
    ((0.08, 0.08, 0.12), (0.22, 0.2, 0.2), ((0.5, 0.45, 0.3), (0.02, 0.02, 0.03), (0.3, 0.3, 0.35)), 0.03),
    ((0.55, 0.5, 0.38), (0.38, 0.4, 0.3), ((0.7, 0.62, 0.4), (0.25, 0.3, 0.15), (0.6, 0.6, 0.62)), 0.05),
)
# colours of other signs that stray into a crop (GTSRB crops often show a neighbour's rim)
_STRAY_SIGN_COLOURS: tuple[tuple[float, ...], ...] = (
    (0.76, 0.1, 0.13),
    (0.08, 0.28, 0.66),
    (0.9, 0.9, 0.88),
    (0.96, 0.74, 0.08),
)
# leaves, bark, grey poles and boxes, dark shadows, white stickers and snow
_OCCLUDER_COLOURS: tuple[tuple[float, ...], ...] = (
    (0.18, 0.32, 0.12),
    (0.3, 0.22, 0.14),
    (0.5, 0.5, 0.5),
    (0.1, 0.1, 0.1),
    (0.85, 0.85, 0.82),
)


def _soft_ellipse(
    xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, rx: float, ry: float, angle: float, edge: float
) -> np.ndarray:
    """Ellipse mask with a soft edge of about ``edge`` (in normalised radius units)."""
    ca, sa = np.cos(angle), np.sin(angle)
    dx, dy = xs - cx, ys - cy
    d = np.sqrt(((dx * ca + dy * sa) / rx) ** 2 + ((dy * ca - dx * sa) / ry) ** 2)
    return np.clip((1.0 - d) / edge, 0.0, 1.0)


def _soft_line(xs: np.ndarray, ys: np.ndarray, px: float, py: float, angle: float, width: float) -> np.ndarray:
    d = np.abs((xs - px) * np.sin(angle) - (ys - py) * np.cos(angle))
    return np.clip((width / 2 - d) * 40.0 + 0.5, 0.0, 1.0)


def _background(rng: np.random.Generator, g: _Grids) -> np.ndarray:
    """Clutter behind the sign: a tinted gradient, low-frequency blotches, blobs, lines, grain."""
    top, bottom, blob_colours, grain = _THEMES[rng.integers(len(_THEMES))]
    shift = rng.normal(0.0, 0.06, 3)
    tilt = rng.normal(0.0, 0.4)
    t = np.clip(g.ys + tilt * (g.xs - 0.5), 0.0, 1.0)[..., None]
    bg = (np.asarray(top) + shift) * (1 - t) + (np.asarray(bottom) + shift) * t
    cells = int(rng.integers(3, 7))
    up = _upsampler(g.size, cells)
    field = rng.normal(0.0, rng.uniform(0.03, 0.12), (cells, cells, 3))
    bg = bg + (up @ field.transpose(2, 0, 1) @ up.T).transpose(1, 2, 0)
    for _ in range(int(rng.poisson(2.0))):
        if rng.random() < 0.12:
            colour = np.asarray(_STRAY_SIGN_COLOURS[rng.integers(len(_STRAY_SIGN_COLOURS))])
        else:
            colour = np.asarray(blob_colours[rng.integers(len(blob_colours))]) + rng.normal(0.0, 0.06, 3)
        m = _soft_ellipse(
            g.xs,
            g.ys,
            rng.uniform(-0.1, 1.1),
            rng.uniform(-0.1, 1.1),
            rng.uniform(0.08, 0.5),
            rng.uniform(0.08, 0.5),
            rng.uniform(0, np.pi),
            rng.uniform(0.05, 0.6),
        )
        bg += (colour - bg) * (m * rng.uniform(0.5, 1.0))[..., None]
    for _ in range(int(rng.poisson(0.8))):
        angle = rng.choice([np.pi / 2, 0.0, rng.uniform(0, np.pi)]) + rng.normal(0.0, 0.05)
        colour = np.full(3, rng.uniform(0.05, 0.9)) + rng.normal(0.0, 0.04, 3)
        m = _soft_line(g.xs, g.ys, rng.uniform(0, 1), rng.uniform(0, 1), angle, rng.uniform(0.02, 0.12))
        bg += (colour - bg) * m[..., None]
    bg += rng.normal(0.0, grain * rng.uniform(0.5, 1.5), (g.size, g.size, 1))
    return bg


def _homography(cx: float, cy: float, half: float, rng: np.random.Generator) -> np.ndarray:
    """Template -> canvas pixels: tilt (perspective), squeeze, rotate (+-15 degrees), scale, move."""
    theta = float(np.clip(rng.normal(0.0, np.radians(7.0)), -np.radians(15.0), np.radians(15.0)))
    squeeze = rng.uniform(0.78, 1.0)
    px, py = rng.uniform(-0.14, 0.14), rng.uniform(-0.1, 0.1)
    shear = rng.normal(0.0, 0.04)
    persp = np.array([[1.0, shear, 0.0], [0.0, 1.0, 0.0], [px, py, 1.0]])
    c, s = np.cos(theta), np.sin(theta)
    rot_scale = np.array([[c * half * squeeze, -s * half, cx], [s * half * squeeze, c * half, cy], [0.0, 0.0, 1.0]])
    return rot_scale @ persp


def _render(
    rng: np.random.Generator, label: int, tm: _Templates, g: _Grids
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int, int, int]]:
    """One image: returns (S, S, 3) uint8, canvas (width, height) and sign box in canvas pixels.
    The random draws come in a fixed order (the data set of a seed is the same on every machine)."""
    S = g.size
    W, H, half, cx, cy, M = _placement(rng)
    box = _sign_box(M @ tm.outlines[label], W, H)
    tex = _painted_texture(rng, tm, label)
    sign = _sample_sign(rng, tex, tm.res, M, W, H, g)
    img = _in_scene(rng, sign, g, W, H, half, cx, cy)
    img = _photometric(rng, img, g, S / min(W, H))
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8), (W, H), box


def _placement(rng: np.random.Generator) -> tuple[int, int, float, float, float, np.ndarray]:
    """The notional original photo (GTSRB: mostly 25..70 px) and the sign in it, near the centre
    with a margin of roughly 10 % of the side, as in GTSRB's crops: (W, H, half, cx, cy, homography)."""
    W = int(np.clip(round(np.exp(rng.normal(np.log(44.0), 0.42))), 20, 240))
    H = int(np.clip(round(W * rng.uniform(0.9, 1.1)), 20, 250))
    half = rng.uniform(0.34, 0.46) * min(W, H)
    cx = W / 2 + rng.uniform(-0.5, 0.5) * max(W / 2 - half * 1.05, 0.0)
    cy = H / 2 + rng.uniform(-0.5, 0.5) * max(H / 2 - half * 1.05, 0.0)
    return W, H, half, cx, cy, _homography(cx, cy, half, rng)


def _sign_box(out: np.ndarray, W: int, H: int) -> tuple[int, int, int, int]:
    """The box of the mapped sign outline in canvas pixels."""
    ox, oy = out[0] / out[2], out[1] / out[2]
    return (
        int(np.clip(np.floor(ox.min()), 0, W - 1)),
        int(np.clip(np.floor(oy.min()), 0, H - 1)),
        int(np.clip(np.ceil(ox.max()), 0, W - 1)),
        int(np.clip(np.ceil(oy.max()), 0, H - 1)),
    )


def _painted_texture(rng: np.random.Generator, tm: _Templates, label: int) -> np.ndarray:
    """The template painted with weathered, jittered colours: (texels, RGBA)."""
    fade = rng.uniform(0.0, 0.25)
    paints = _BASE_PAINTS + rng.normal(0.0, 0.035, (N_PAINTS, 3))
    paints = paints * (1 - fade) + fade * paints.mean(axis=1, keepdims=True) * 1.1
    tex = np.empty((tm.alpha.shape[1], 4), dtype=np.float32)
    tex[:, :3] = tm.coverage[label] @ paints.astype(np.float32)
    tex[:, 3] = tm.alpha[label]
    return tex


def _sample_sign(
    rng: np.random.Generator, tex: np.ndarray, R: int, M: np.ndarray, W: int, H: int, g: _Grids
) -> np.ndarray:
    """The 2x sampling grid inverse-mapped into texels and sampled bilinearly (outside: transparent),
    under uneven light (shadows, glare), then box-downsampled: (S, S, RGBA)."""
    to_texel = np.array([[R / 2, 0.0, R / 2 + 0.5], [0.0, R / 2, R / 2 + 0.5], [0.0, 0.0, 1.0]])  # +1 for the pad
    A = to_texel @ np.linalg.inv(M) @ np.diag([W, H, 1.0])
    q = A @ g.fine
    u = np.clip(q[0] / q[2], 0.0, R + 1.0 - 1e-6)
    v = np.clip(q[1] / q[2], 0.0, R + 1.0 - 1e-6)
    behind = q[2] <= 0
    u[behind] = 0.0
    u0, v0 = np.minimum(u.astype(np.intp), R), np.minimum(v.astype(np.intp), R)
    fu, fv = (u - u0).astype(np.float32)[:, None], (v - v0).astype(np.float32)[:, None]
    i = v0 * (R + 2) + u0
    t00, t01 = np.take(tex, i, axis=0), np.take(tex, i + 1, axis=0)
    t10, t11 = np.take(tex, i + R + 2, axis=0), np.take(tex, i + R + 3, axis=0)
    top = t00 + (t01 - t00) * fu
    bottom = t10 + (t11 - t10) * fu
    samp = top + (bottom - top) * fv
    gu, gv = rng.normal(0.0, 0.18, 2) / (R / 2)
    shade = 1.0 + gu * (u - (R + 1) / 2) + gv * (v - (R + 1) / 2)
    samp[:, :3] *= np.clip(shade, 0.4, 1.6).astype(np.float32)[:, None]
    return _box_downsample(samp, g.size)


def _in_scene(
    rng: np.random.Generator, sign: np.ndarray, g: _Grids, W: int, H: int, half: float, cx: float, cy: float
) -> np.ndarray:
    """The sign over its background, sometimes with its pole, sometimes partly hidden: (S, S, 3)."""
    S = g.size
    bg = _background(rng, g)
    if rng.random() < 0.3:  # the pole the sign is mounted on
        pole = _soft_line(
            g.xs, g.ys, cx / W, cy / H, np.pi / 2 + rng.normal(0, 0.05), rng.uniform(0.15, 0.3) * half / W
        )
        pole *= g.ys > cy / H
        bg += (np.full(3, rng.uniform(0.3, 0.7)) - bg) * pole[..., None]
    img = sign[..., :3] + (1.0 - sign[..., 3:]) * bg
    if rng.random() < 0.15:  # partial occlusion by a branch, another sign, a sticker ...
        phi = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.55, 1.1) * half
        colour = np.asarray(_OCCLUDER_COLOURS[rng.integers(len(_OCCLUDER_COLOURS))]) + rng.normal(0.0, 0.05, 3)
        m = _soft_ellipse(
            g.xs,
            g.ys,
            (cx + dist * np.cos(phi)) / W,
            (cy + dist * np.sin(phi)) / H,
            rng.uniform(0.2, 0.55) * half / W,
            rng.uniform(0.2, 0.55) * half / H,
            rng.uniform(0, np.pi),
            rng.uniform(0.1, 0.5),
        )
        img += (colour + rng.normal(0.0, 0.04, (S, S, 1)) - img) * m[..., None]
    return img


def _box_downsample(samples: np.ndarray, size: int) -> np.ndarray:
    """(2S*2S, C) row-major samples -> (S, S, C) 2x2 means (pairwise adds: much faster than .mean)."""
    c = samples.shape[1]
    rows = samples.reshape(size, 2, 2 * size * c)
    rows = (rows[:, 0] + rows[:, 1]).reshape(size, size, 2, c)
    return (rows[:, :, 0] + rows[:, :, 1]) * 0.25


def _blur_matrix(pix: np.ndarray, sigma: float) -> np.ndarray:
    """Row-normalised Gaussian blur matrix (edges renormalised rather than padded)."""
    k = np.exp(-0.5 * ((pix[:, None] - pix[None, :]) / sigma) ** 2)
    return k / k.sum(axis=1, keepdims=True)


def _photometric(rng: np.random.Generator, img: np.ndarray, g: _Grids, upscale: float) -> np.ndarray:
    """Camera and light: saturation, contrast, exposure, colour cast, gamma, blur, noise."""
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.55, 1.15)
    mean = img.mean()
    img = (img - mean) * float(np.exp(rng.normal(-0.05, 0.2))) + mean
    img = img * float(np.clip(np.exp(rng.normal(-0.1, 0.28)), 0.22, 1.7))
    img = img * rng.normal(1.0, 0.06, 3)
    img = np.clip(img, 0.0, 1.0) ** float(np.exp(rng.normal(0.0, 0.15)))
    # resolution blur (small photos were upscaled) plus defocus, sometimes directional (motion)
    base = 0.4 * upscale
    extra = rng.uniform(0.3, 1.0) if rng.random() < 0.3 else 0.0
    sigma = float(np.hypot(base, extra))
    sx, sy = sigma, sigma
    if rng.random() < 0.15:
        sx = sx + rng.uniform(0.5, 1.5)
    if sigma > 0.2 or sx > 0.2:
        by, bx = _blur_matrix(g.pix, sy), _blur_matrix(g.pix, sx)
        img = (by @ img.transpose(2, 0, 1) @ bx.T).transpose(1, 2, 0)
    img = img + rng.normal(0.0, rng.uniform(0.004, 0.03), img.shape)
    return img
