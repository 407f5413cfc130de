"""Built-in synthetic traffic signs: the tool's default data set and the test data.

The real GTSRB pickles are large and not always at hand, yet every search needs
data that behaves like them: 43 imbalanced classes of small, cluttered,
badly lit 32x32 RGB crops in which speed limits differ only by their digits
and warning triangles only by their pictogram.  This module renders such
images from scratch with pure numpy, deterministically from a seed, and
writes them in the tutorial's pickle layout (``train.p``, ``valid.p``,
``test.p`` with ``features``/``labels``/``sizes``/``coords`` plus
``signnames.csv``), so the rest of the tool cannot tell it from the real
thing except by its accuracy.

Produce a data folder with::

    python run_search.py data synth --out DIR --n-train N

or from Python with ``write_synthetic_dataset(Path(DIR), n_train=N)``.

How an image is made: each class has a template (anti-aliased material
coverage maps drawn once with point-in-polygon and distance masks at 3x
supersampling); per image the template is coloured with jittered paints,
warped by a random homography (scale, position, +-15 degree rotation,
perspective) through an inverse-mapped 2x supersampled sampling grid,
composited over random clutter, then occluded, relit, blurred and noised.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .classes import N_GTSRB_CLASSES, write_signnames
from .errors import UserError

SYNTH_VERSION: int = 1
"""Bump whenever the generator's output changes (it keys the cached default data set)."""

GTSRB_TRAIN_COUNTS: np.ndarray = np.array(
    [210, 2220, 2250, 1410, 1980, 1860, 420, 1440, 1410, 1470, 2010, 1320, 2100, 2160, 780,
     630, 420, 1110, 1200, 210, 360, 330, 390, 510, 270, 1500, 600, 240, 540, 270, 450, 780,
     240, 689, 420, 1200, 390, 210, 2070, 300, 360, 240, 240],
    dtype=np.int64,
)
"""Images per class in the official GTSRB training set (39,209 images in all)."""

GTSRB_CLASS_FREQUENCIES: np.ndarray = GTSRB_TRAIN_COUNTS / GTSRB_TRAIN_COUNTS.sum()
"""Relative class frequencies of GTSRB's training set; the synthetic splits follow them."""

SPLITS: tuple[str, ...] = ("train", "valid", "test")
PICKLE_PROTOCOL = 4
_SUPERSAMPLE = 3  # template supersampling factor: anti-aliased edges without a filter

# ---------------------------------------------------------------------------
# Paints
# ---------------------------------------------------------------------------
WHITE, RED, BLUE, YELLOW, BLACK, GREY, GREEN = range(7)
_BASE_PAINTS = np.array(
    [
        [0.90, 0.90, 0.88],  # white
        [0.76, 0.10, 0.13],  # red
        [0.08, 0.28, 0.66],  # blue
        [0.96, 0.74, 0.08],  # yellow
        [0.07, 0.07, 0.08],  # black
        [0.50, 0.50, 0.50],  # grey (the "end of" signs' faded symbols)
        [0.10, 0.62, 0.30],  # green (traffic light)
    ]
)
N_PAINTS = len(_BASE_PAINTS)

# ---------------------------------------------------------------------------
# Bitmap font (5x7) for the digits of the speed limits and the STOP lettering
# ---------------------------------------------------------------------------
_FONT_ROWS: dict[str, tuple[str, ...]] = {
    "0": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "1": ("..#..", ".##..", "#.#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": (".###.", "#...#", "....#", "..##.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
}
_FONT: dict[str, np.ndarray] = {
    ch: np.array([[c == "#" for c in row] for row in rows]) for ch, rows in _FONT_ROWS.items()
}

Point = tuple[float, float]


# ---------------------------------------------------------------------------
# Template drawing
# ---------------------------------------------------------------------------
class _Painter:
    """Paints materials onto a supersampled grid over template space [-1, 1]^2 (y down).

    Later paint covers earlier paint, so a sign is drawn back to front like the
    real one (plate, rim, field, symbol).  ``mirror`` flips x so that left/right
    sign pairs share one drawing.
    """

    def __init__(self, res: int, mirror: bool = False) -> None:
        n = res * _SUPERSAMPLE
        c = (np.arange(n) + 0.5) / n * 2.0 - 1.0
        self.res = res
        self.x = np.broadcast_to(c[None, :] * (-1.0 if mirror else 1.0), (n, n))
        self.y = np.broadcast_to(c[:, None], (n, n))
        self.mat = np.full((n, n), -1, dtype=np.int8)

    def paint(self, paint: int, mask: np.ndarray) -> None:
        self.mat[mask] = paint

    # -- masks ---------------------------------------------------------------
    def disc(self, cx: float, cy: float, r: float) -> np.ndarray:
        return (self.x - cx) ** 2 + (self.y - cy) ** 2 <= r * r

    def ring(self, cx: float, cy: float, r_in: float, r_out: float) -> np.ndarray:
        d2 = (self.x - cx) ** 2 + (self.y - cy) ** 2
        return (d2 <= r_out * r_out) & (d2 >= r_in * r_in)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
        ca, sa = np.cos(angle), np.sin(angle)
        dx, dy = self.x - cx, self.y - cy
        u, v = dx * ca + dy * sa, -dx * sa + dy * ca
        return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        return (self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1)

    def polygon(self, pts: list[Point]) -> np.ndarray:
        """Even-odd point-in-polygon test, vectorised over the grid, looped over edges."""
        inside = np.zeros(self.x.shape, dtype=bool)
        for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]):
            if y1 == y2:
                continue
            crosses = (y1 > self.y) != (y2 > self.y)
            x_at = x1 + (self.y - y1) * (x2 - x1) / (y2 - y1)
            inside ^= crosses & (self.x < x_at)
        return inside

    def rounded_polygon(self, pts: list[Point], r: float) -> np.ndarray:
        """A convex polygon with corners rounded by r, like a real sign plate."""
        inset = _scale_about_centroid(pts, 1.0 - r / _inradius(pts))
        mask = self.polygon(inset)
        for p, q in zip(inset, inset[1:] + inset[:1]):
            mask |= self.capsule(p, q, 2 * r)
        return mask

    def capsule(self, p: Point, q: Point, width: float) -> np.ndarray:
        """Thick line segment with round caps: distance to the segment <= width / 2."""
        (px, py), (qx, qy) = p, q
        dx, dy = qx - px, qy - py
        ll = dx * dx + dy * dy
        t = np.zeros(self.x.shape) if ll == 0 else np.clip(((self.x - px) * dx + (self.y - py) * dy) / ll, 0.0, 1.0)
        ex, ey = self.x - (px + t * dx), self.y - (py + t * dy)
        return ex * ex + ey * ey <= (width / 2) ** 2

    def polyline(self, pts: list[Point], width: float) -> np.ndarray:
        mask = np.zeros(self.x.shape, dtype=bool)
        for p, q in zip(pts, pts[1:]):
            mask |= self.capsule(p, q, width)
        return mask

    def stripe(self, nx: float, ny: float, offset: float, width: float) -> np.ndarray:
        """Infinite band of the given width whose centre line is n.(x, y) = offset."""
        return np.abs(self.x * nx + self.y * ny - offset) <= width / 2

    def text(self, s: str, cx: float, cy: float, height: float, char_w: float, gap: float) -> np.ndarray:
        """Bitmap-font text centred at (cx, cy): each lit 5x7 cell becomes a filled cell."""
        total = len(s) * char_w + (len(s) - 1) * gap
        mask = np.zeros(self.x.shape, dtype=bool)
        y0 = cy - height / 2
        row = np.floor((self.y - y0) / height * 7).astype(int)
        row_ok = (row >= 0) & (row < 7)
        for i, ch in enumerate(s):
            x0 = cx - total / 2 + i * (char_w + gap)
            col = np.floor((self.x - x0) / char_w * 5).astype(int)
            ok = row_ok & (col >= 0) & (col < 5)
            lit = np.zeros(self.x.shape, dtype=bool)
            lit[ok] = _FONT[ch][row[ok], col[ok]]
            mask |= lit
        return mask

    def arrow_head(self, tip: Point, direction: Point, length: float, half_width: float) -> np.ndarray:
        dx, dy = direction
        norm = float(np.hypot(dx, dy))
        dx, dy = dx / norm, dy / norm
        bx, by = tip[0] - dx * length, tip[1] - dy * length
        left = (bx - dy * half_width, by + dx * half_width)
        right = (bx + dy * half_width, by - dx * half_width)
        return self.polygon([tip, left, right])

    def arrow(self, pts: list[Point], width: float, head_len: float, head_half: float) -> np.ndarray:
        """Shaft along pts; the head continues the last segment's direction."""
        (ax, ay), (bx, by) = pts[-2], pts[-1]
        d = (bx - ax, by - ay)
        n = float(np.hypot(*d))
        tip = (bx + d[0] / n * head_len * 0.9, by + d[1] / n * head_len * 0.9)
        return self.polyline(pts, width) | self.arrow_head(tip, d, head_len, head_half)

    # -- result ----------------------------------------------------------------
    def coverage(self) -> np.ndarray:
        """(N_PAINTS, res, res) float32 coverage by box-averaging the supersampled grid."""
        r, s = self.res, _SUPERSAMPLE
        onehot = self.mat[None, :, :] == np.arange(N_PAINTS, dtype=np.int8)[:, None, None]
        return onehot.reshape(N_PAINTS, r, s, r, s).mean(axis=(2, 4)).astype(np.float32)


def _centroid(pts: list[Point]) -> Point:
    a = np.asarray(pts, dtype=float)
    return float(a[:, 0].mean()), float(a[:, 1].mean())


def _inradius(pts: list[Point]) -> float:
    """Distance from the vertex centroid to the nearest edge (exact for regular shapes)."""
    cx, cy = _centroid(pts)
    dists = []
    for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]):
        dists.append(abs((x2 - x1) * (y1 - cy) - (x1 - cx) * (y2 - y1)) / np.hypot(x2 - x1, y2 - y1))
    return float(min(dists))


def _scale_about_centroid(pts: list[Point], k: float) -> list[Point]:
    cx, cy = _centroid(pts)
    return [(cx + (x - cx) * k, cy + (y - cy) * k) for x, y in pts]


def _bezier(p0: Point, p1: Point, p2: Point, p3: Point, n: int = 14) -> list[Point]:
    t = np.linspace(0.0, 1.0, n)[:, None]
    a = np.array([p0, p1, p2, p3], dtype=float)
    pts = (1 - t) ** 3 * a[0] + 3 * (1 - t) ** 2 * t * a[1] + 3 * (1 - t) * t**2 * a[2] + t**3 * a[3]
    return [(float(x), float(y)) for x, y in pts]


def _arc(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 12) -> list[Point]:
    """Points on a circle; angles in degrees, y down (90 degrees points down)."""
    a = np.radians(np.linspace(a0, a1, n))
    return [(float(cx + r * np.cos(t)), float(cy + r * np.sin(t))) for t in a]


# -- plates ----------------------------------------------------------------------
_TRIANGLE: list[Point] = [(0.0, -0.93), (1.0, 0.80), (-1.0, 0.80)]
_INVERTED_TRIANGLE: list[Point] = [(-1.0, -0.80), (1.0, -0.80), (0.0, 0.93)]
_OCTAGON: list[Point] = [(float(np.cos(a)), float(np.sin(a))) for a in np.radians(22.5 + 45.0 * np.arange(8))]


def _prohibitory(p: _Painter) -> None:
    """White disc with a red ring: speed limits and the other bans."""
    p.paint(WHITE, p.disc(0, 0, 1.0))
    p.paint(RED, p.disc(0, 0, 0.95))
    p.paint(WHITE, p.disc(0, 0, 0.74))


def _end_of(p: _Painter) -> None:
    """White disc with a thin dark edge: the "end of" signs, before symbol and bars."""
    p.paint(GREY, p.disc(0, 0, 1.0))
    p.paint(WHITE, p.disc(0, 0, 0.95))


def _end_bars(p: _Painter, n: int = 5) -> None:
    """The black diagonal bars (lower left to upper right) that cancel a restriction."""
    s = np.sqrt(0.5)
    inside = p.disc(0, 0, 0.95)
    for k in range(n):
        off = (k - (n - 1) / 2) * 0.085
        p.paint(BLACK, inside & p.stripe(s, s, off, 0.04))


def _warning(p: _Painter) -> None:
    """Red-rimmed white triangle, point up."""
    p.paint(WHITE, p.rounded_polygon(_TRIANGLE, 0.12))
    p.paint(RED, p.rounded_polygon(_scale_about_centroid(_TRIANGLE, 0.94), 0.1))
    p.paint(WHITE, p.polygon(_scale_about_centroid(_TRIANGLE, 0.62)))


def _mandatory(p: _Painter) -> None:
    """Blue disc for the white mandatory-direction arrows."""
    p.paint(WHITE, p.disc(0, 0, 1.0))
    p.paint(BLUE, p.disc(0, 0, 0.95))


# -- symbols ---------------------------------------------------------------------
def _g(pts: list[Point]) -> list[Point]:
    """Map pictogram coordinates ([-1, 1]^2) into the glyph area of a warning triangle."""
    return [(0.36 * x, 0.22 + 0.36 * y) for x, y in pts]


_GS = 0.36  # glyph scale for widths / radii


def _digits(p: _Painter, text: str, paint: int) -> None:
    if len(text) == 2:
        p.paint(paint, p.text(text, 0.0, 0.0, 0.86, 0.42, 0.1))
    else:
        p.paint(paint, p.text(text, 0.0, 0.0, 0.76, 0.31, 0.06))


def _car_front(p: _Painter, cx: float, cy: float, paint: int) -> None:
    """Front view of a car, as on the no-passing signs."""
    mask = p.rect(cx - 0.25, cy - 0.08, cx + 0.25, cy + 0.2)
    mask |= p.polygon([(cx - 0.16, cy - 0.3), (cx + 0.16, cy - 0.3), (cx + 0.23, cy - 0.08), (cx - 0.23, cy - 0.08)])
    mask |= p.rect(cx - 0.23, cy + 0.2, cx - 0.13, cy + 0.33) | p.rect(cx + 0.13, cy + 0.2, cx + 0.23, cy + 0.33)
    p.paint(paint, mask)


def _truck_front(p: _Painter, cx: float, cy: float, paint: int) -> None:
    mask = p.rect(cx - 0.25, cy - 0.42, cx + 0.25, cy + 0.2)
    mask |= p.rect(cx - 0.23, cy + 0.2, cx - 0.12, cy + 0.33) | p.rect(cx + 0.12, cy + 0.2, cx + 0.23, cy + 0.33)
    p.paint(paint, mask)


def _truck_side(p: _Painter, paint: int) -> None:
    """Side view of a lorry (the "over 3.5 t" symbol)."""
    mask = p.rect(-0.58, -0.32, 0.2, 0.16)
    mask |= p.polygon([(0.24, -0.16), (0.44, -0.16), (0.58, 0.0), (0.58, 0.16), (0.24, 0.16)])
    for wx in (-0.4, -0.12, 0.42):
        mask |= p.disc(wx, 0.22, 0.11)
    p.paint(paint, mask)


def _person(p: _Painter, ox: float, oy: float, k: float) -> np.ndarray:
    """Walking figure in pictogram coordinates, offset (ox, oy) and scaled by k."""
    def t(pts: list[Point]) -> list[Point]:
        return _g([(ox + k * x, oy + k * y) for x, y in pts])

    w = _GS * k
    hx, hy = t([(0.05, -0.8)])[0]
    mask = p.disc(hx, hy, 0.17 * w)
    mask |= p.polyline(t([(0.0, -0.55), (-0.05, 0.15)]), 0.3 * w)
    mask |= p.polyline(t([(-0.3, 0.9), (-0.05, 0.15), (0.3, 0.9)]), 0.2 * w)
    mask |= p.polyline(t([(-0.35, 0.05), (0.0, -0.42), (0.3, 0.0)]), 0.15 * w)
    return mask


def _draw_speed(text: str) -> Callable[[_Painter], None]:
    def draw(p: _Painter) -> None:
        _prohibitory(p)
        _digits(p, text, BLACK)
    return draw


def _draw_end_80(p: _Painter) -> None:
    _end_of(p)
    _digits(p, "80", GREY)
    _end_bars(p)


def _draw_no_passing(p: _Painter) -> None:
    _prohibitory(p)
    _car_front(p, -0.3, 0.04, RED)
    _car_front(p, 0.3, 0.04, BLACK)


def _draw_no_passing_trucks(p: _Painter) -> None:
    _prohibitory(p)
    _truck_front(p, -0.3, 0.06, RED)
    _car_front(p, 0.3, 0.04, BLACK)


def _draw_right_of_way(p: _Painter) -> None:
    _warning(p)
    mask = p.polyline(_g([(0, -0.95), (0, 0.95)]), 0.42 * _GS)
    mask |= p.polyline(_g([(-0.7, 0.0), (0.7, 0.0)]), 0.22 * _GS)
    p.paint(BLACK, mask)


def _draw_priority(p: _Painter) -> None:
    diamond = [(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)]
    p.paint(BLACK, p.rounded_polygon(diamond, 0.05))
    p.paint(WHITE, p.polygon(_scale_about_centroid(diamond, 0.95)))
    p.paint(YELLOW, p.polygon(_scale_about_centroid(diamond, 0.62)))


def _draw_yield(p: _Painter) -> None:
    p.paint(WHITE, p.rounded_polygon(_INVERTED_TRIANGLE, 0.12))
    p.paint(RED, p.rounded_polygon(_scale_about_centroid(_INVERTED_TRIANGLE, 0.94), 0.1))
    p.paint(WHITE, p.polygon(_scale_about_centroid(_INVERTED_TRIANGLE, 0.55)))


def _draw_stop(p: _Painter) -> None:
    p.paint(WHITE, p.polygon(_OCTAGON))
    p.paint(RED, p.polygon(_scale_about_centroid(_OCTAGON, 0.92)))
    p.paint(WHITE, p.text("STOP", 0.0, 0.0, 0.46, 0.3, 0.07))


def _draw_no_vehicles(p: _Painter) -> None:
    _prohibitory(p)


def _draw_no_trucks(p: _Painter) -> None:
    _prohibitory(p)
    _truck_side(p, BLACK)


def _draw_no_entry(p: _Painter) -> None:
    p.paint(WHITE, p.disc(0, 0, 1.0))
    p.paint(RED, p.disc(0, 0, 0.95))
    p.paint(WHITE, p.rect(-0.62, -0.15, 0.62, 0.15))


def _draw_caution(p: _Painter) -> None:
    _warning(p)
    x, y = _g([(0.0, 0.75)])[0]
    p.paint(BLACK, p.polyline(_g([(0, -0.95), (0, 0.3)]), 0.34 * _GS) | p.disc(x, y, 0.2 * _GS))


def _draw_curve(p: _Painter) -> None:
    """Curve to the left (mirrored for the right-hand one)."""
    _warning(p)
    path = _g([(0.3, 1.0)] + _bezier((0.3, 0.6), (0.3, -0.2), (0.1, -0.45), (-0.45, -0.55))[:-1])
    p.paint(BLACK, p.arrow(path, 0.28 * _GS, 0.5 * _GS, 0.38 * _GS))


def _draw_double_curve(p: _Painter) -> None:
    _warning(p)
    path = _g(_bezier((0.0, 1.0), (-0.9, 0.45), (0.8, -0.1), (-0.05, -0.6), n=18))
    p.paint(BLACK, p.arrow(path, 0.26 * _GS, 0.45 * _GS, 0.36 * _GS))


def _draw_bumpy(p: _Painter) -> None:
    _warning(p)
    mask = p.polyline(_g([(-1.0, 0.75), (1.0, 0.75)]), 0.25 * _GS)
    for bx in (-0.48, 0.48):
        cx, cy = _g([(bx, 0.75)])[0]
        mask |= p.disc(cx, cy, 0.42 * _GS) & (p.y <= cy)
    p.paint(BLACK, mask)


def _draw_slippery(p: _Painter) -> None:
    _warning(p)
    car = [(-0.55, -0.38), (0.55, -0.38), (0.55, -0.62), (0.3, -0.62), (0.18, -0.9), (-0.25, -0.9), (-0.38, -0.62),
           (-0.55, -0.62)]
    mask = p.polygon(_g(car))
    for wx in (-0.35, 0.35):
        cx, cy = _g([(wx, -0.36)])[0]
        mask |= p.disc(cx, cy, 0.12 * _GS)
    for sx in (-0.3, 0.3):
        v = np.linspace(-0.15, 1.0, 12)
        mask |= p.polyline(_g([(float(sx + 0.22 * np.sin(4.5 * t)), float(t)) for t in v]), 0.15 * _GS)
    p.paint(BLACK, mask)


def _draw_narrows_right(p: _Painter) -> None:
    _warning(p)
    mask = p.polyline(_g([(-0.4, -0.95), (-0.4, 0.95)]), 0.24 * _GS)
    mask |= p.polyline(_g([(0.45, 0.95), (0.45, 0.25), (0.08, -0.2), (0.08, -0.95)]), 0.24 * _GS)
    p.paint(BLACK, mask)


def _draw_road_work(p: _Painter) -> None:
    _warning(p)
    hx, hy = _g([(-0.1, -0.72)])[0]
    mask = p.disc(hx, hy, 0.18 * _GS)
    mask |= p.polyline(_g([(-0.15, -0.45), (0.1, 0.2)]), 0.3 * _GS)
    mask |= p.polyline(_g([(-0.25, 0.9), (0.1, 0.2), (0.35, 0.9)]), 0.2 * _GS)
    mask |= p.polyline(_g([(-0.1, -0.3), (-0.55, 0.2)]), 0.15 * _GS)
    mask |= p.polyline(_g([(-0.85, -0.35), (-0.45, 0.75)]), 0.1 * _GS)
    mask |= p.polygon(_g([(0.35, 0.95), (1.0, 0.95), (0.75, 0.45)]))
    p.paint(BLACK, mask)


def _draw_signals(p: _Painter) -> None:
    _warning(p)
    p.paint(BLACK, p.polygon(_g([(-0.38, -1.05), (0.38, -1.05), (0.38, 1.0), (-0.38, 1.0)])))
    for vy, paint in ((-0.66, RED), (0.0, YELLOW), (0.63, GREEN)):
        cx, cy = _g([(0.0, vy)])[0]
        p.paint(paint, p.disc(cx, cy, 0.25 * _GS))


def _draw_pedestrians(p: _Painter) -> None:
    _warning(p)
    p.paint(BLACK, _person(p, 0.0, 0.0, 1.1))


def _draw_children(p: _Painter) -> None:
    _warning(p)
    p.paint(BLACK, _person(p, -0.35, 0.0, 1.05) | _person(p, 0.45, 0.22, 0.75))


def _draw_bicycle(p: _Painter) -> None:
    _warning(p)
    mask = np.zeros(p.x.shape, dtype=bool)
    for wx in (-0.52, 0.52):
        cx, cy = _g([(wx, 0.45)])[0]
        mask |= p.ring(cx, cy, 0.26 * _GS, 0.4 * _GS)
    mask |= p.polyline(_g([(-0.52, 0.45), (-0.1, -0.2), (0.38, -0.2), (0.52, 0.45)]), 0.13 * _GS)
    mask |= p.polyline(_g([(-0.1, -0.2), (0.0, 0.45), (0.38, -0.2)]), 0.13 * _GS)
    mask |= p.polyline(_g([(0.3, -0.5), (0.38, -0.2)]), 0.13 * _GS)
    mask |= p.polyline(_g([(-0.25, -0.35), (0.05, -0.35)]), 0.15 * _GS)
    p.paint(BLACK, mask)


def _draw_snow(p: _Painter) -> None:
    _warning(p)
    mask = np.zeros(p.x.shape, dtype=bool)
    for a in np.radians([90.0, 30.0, -30.0]):
        dx, dy = 0.9 * np.cos(a), 0.9 * np.sin(a)
        mask |= p.polyline(_g([(-dx, -dy), (dx, dy)]), 0.15 * _GS)
        for sgn in (-1.0, 1.0):
            bx, by = sgn * 0.55 * np.cos(a), sgn * 0.55 * np.sin(a)
            for side in (-1.0, 1.0):
                b = a + side * np.radians(45.0)
                mask |= p.polyline(_g([(bx, by), (bx + sgn * 0.3 * np.cos(b), by + sgn * 0.3 * np.sin(b))]), 0.11 * _GS)
    p.paint(BLACK, mask)


def _draw_deer(p: _Painter) -> None:
    _warning(p)
    bx, by = _g([(-0.05, 0.05)])[0]
    mask = p.ellipse(bx, by, 0.58 * _GS, 0.24 * _GS, np.radians(-28.0))
    mask |= p.polyline(_g([(0.35, -0.2), (0.55, -0.6), (0.8, -0.55)]), 0.2 * _GS)
    for a, b in (((0.5, -0.65), (0.35, -1.0)), ((0.58, -0.66), (0.65, -1.0))):  # antlers
        mask |= p.polyline(_g([a, b]), 0.09 * _GS)
    for a, b in (((0.35, -0.05), (0.85, 0.2)), ((0.3, 0.0), (0.55, 0.45)),  # legs
                 ((-0.45, 0.25), (-0.85, 0.85)), ((-0.5, 0.25), (-0.5, 0.95))):
        mask |= p.polyline(_g([a, b]), 0.13 * _GS)
    p.paint(BLACK, mask)


def _draw_end_all(p: _Painter) -> None:
    _end_of(p)
    _end_bars(p, n=7)


def _draw_turn_right(p: _Painter) -> None:
    """Turn right ahead (mirrored for left)."""
    _mandatory(p)
    path = [(-0.22, 0.68)] + _arc(0.12, -0.02, 0.34, 180.0, 270.0)
    p.paint(WHITE, p.arrow(path, 0.2, 0.36, 0.3))


def _draw_ahead(p: _Painter) -> None:
    _mandatory(p)
    p.paint(WHITE, p.arrow([(0.0, 0.7), (0.0, -0.2)], 0.22, 0.44, 0.34))


def _draw_straight_or_right(p: _Painter) -> None:
    """Go straight or right (mirrored for left)."""
    _mandatory(p)
    mask = p.arrow([(-0.15, 0.72), (-0.15, -0.28)], 0.19, 0.36, 0.27)
    mask |= p.arrow(_arc(0.2, 0.28, 0.35, 180.0, 270.0), 0.19, 0.34, 0.26)
    p.paint(WHITE, mask)


def _draw_keep_right(p: _Painter) -> None:
    """Keep right: arrow down to the right (mirrored for keep left)."""
    _mandatory(p)
    p.paint(WHITE, p.arrow([(-0.42, -0.42), (0.12, 0.12)], 0.22, 0.42, 0.34))


def _draw_roundabout(p: _Painter) -> None:
    _mandatory(p)
    mask = np.zeros(p.x.shape, dtype=bool)
    for start in (0.0, 120.0, 240.0):
        pts = _arc(0.0, 0.0, 0.5, start + 75.0, start + 5.0, n=8)
        mask |= p.arrow(pts, 0.16, 0.26, 0.22)
    p.paint(WHITE, mask)


def _draw_end_no_passing(p: _Painter) -> None:
    _end_of(p)
    _car_front(p, -0.3, 0.04, GREY)
    _car_front(p, 0.3, 0.04, GREY)
    _end_bars(p)


def _draw_end_no_passing_trucks(p: _Painter) -> None:
    _end_of(p)
    _truck_front(p, -0.3, 0.06, GREY)
    _car_front(p, 0.3, 0.04, GREY)
    _end_bars(p)


# class id -> (drawing, mirrored); the ids and order are GTSRB's (see classes.py)
_CLASS_DRAWINGS: tuple[tuple[Callable[[_Painter], None], bool], ...] = (
    (_draw_speed("20"), False),
    (_draw_speed("30"), False),
    (_draw_speed("50"), False),
    (_draw_speed("60"), False),
    (_draw_speed("70"), False),
    (_draw_speed("80"), False),
    (_draw_end_80, False),
    (_draw_speed("100"), False),
    (_draw_speed("120"), False),
    (_draw_no_passing, False),
    (_draw_no_passing_trucks, False),
    (_draw_right_of_way, False),
    (_draw_priority, False),
    (_draw_yield, False),
    (_draw_stop, False),
    (_draw_no_vehicles, False),
    (_draw_no_trucks, False),
    (_draw_no_entry, False),
    (_draw_caution, False),
    (_draw_curve, False),  # dangerous curve to the left
    (_draw_curve, True),  # ... to the right
    (_draw_double_curve, False),
    (_draw_bumpy, False),
    (_draw_slippery, False),
    (_draw_narrows_right, False),
    (_draw_road_work, False),
    (_draw_signals, False),
    (_draw_pedestrians, False),
    (_draw_children, False),
    (_draw_bicycle, False),
    (_draw_snow, False),
    (_draw_deer, False),
    (_draw_end_all, False),
    (_draw_turn_right, False),
    (_draw_turn_right, True),  # turn left ahead
    (_draw_ahead, False),
    (_draw_straight_or_right, False),
    (_draw_straight_or_right, True),  # go straight or left
    (_draw_keep_right, False),
    (_draw_keep_right, True),  # keep left
    (_draw_roundabout, False),
    (_draw_end_no_passing, False),
    (_draw_end_no_passing_trucks, False),
)
assert len(_CLASS_DRAWINGS) == N_GTSRB_CLASSES


@dataclass(frozen=True)
class _Templates:
    """Per-class paint coverage (padded by one empty texel) and outline points."""

    res: int
    coverage: np.ndarray  # (43, (res+2)**2, N_PAINTS) float32
    alpha: np.ndarray  # (43, (res+2)**2) float32, total coverage
    outlines: tuple[np.ndarray, ...]  # per class (3, m) homogeneous template coords of the rim


@lru_cache(maxsize=4)
def _templates(res: int) -> _Templates:
    """Draw every class once; the result is reused for every image of this size."""
    covs, outlines = [], []
    for draw, mirror in _CLASS_DRAWINGS:
        painter = _Painter(res, mirror=mirror)
        draw(painter)
        cov = np.pad(painter.coverage(), ((0, 0), (1, 1), (1, 1)))
        covs.append(np.ascontiguousarray(cov.reshape(N_PAINTS, -1).T))
        alpha = cov.sum(axis=0)[1:-1, 1:-1] > 0.5
        edge = alpha & ~(np.roll(alpha, 1, 0) & np.roll(alpha, -1, 0) & np.roll(alpha, 1, 1) & np.roll(alpha, -1, 1))
        iy, ix = np.nonzero(edge)
        pts = np.stack([(ix + 0.5) / res * 2 - 1, (iy + 0.5) / res * 2 - 1, np.ones(len(ix))])
        outlines.append(pts)
    coverage = np.stack(covs)
    return _Templates(res, coverage, coverage.sum(axis=2), tuple(outlines))


# ---------------------------------------------------------------------------
# Per-image rendering
# ---------------------------------------------------------------------------
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
    (0.76, 0.1, 0.13), (0.08, 0.28, 0.66), (0.9, 0.9, 0.88), (0.96, 0.74, 0.08))
# leaves, bark, grey poles and boxes, dark shadows, white stickers and snow
_OCCLUDER_COLOURS: tuple[tuple[float, ...], ...] = (
    (0.18, 0.32, 0.12), (0.3, 0.22, 0.14), (0.5, 0.5, 0.5), (0.1, 0.1, 0.1), (0.85, 0.85, 0.82))


def _soft_ellipse(xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, rx: float, ry: float,
                  angle: float, edge: float) -> np.ndarray:
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
        m = _soft_ellipse(g.xs, g.ys, rng.uniform(-0.1, 1.1), rng.uniform(-0.1, 1.1),
                          rng.uniform(0.08, 0.5), rng.uniform(0.08, 0.5), rng.uniform(0, np.pi), rng.uniform(0.05, 0.6))
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


def _render(rng: np.random.Generator, label: int, tm: _Templates,
            g: _Grids) -> tuple[np.ndarray, tuple[int, int], tuple[int, int, int, int]]:
    """One image: returns (S, S, 3) uint8, canvas (width, height) and sign box in canvas pixels."""
    S, R = g.size, tm.res
    # the notional original photo (GTSRB: mostly 25..70 px) and the sign in it, near the centre
    # with a margin of roughly 10 % of the side, as in GTSRB's crops
    W = int(np.clip(round(np.exp(rng.normal(np.log(44.0), 0.42))), 20, 240))
    H = int(np.clip(round(W * rng.uniform(0.9, 1.1)), 20, 250))
    half = rng.uniform(0.34, 0.46) * min(W, H)
    cx = W / 2 + rng.uniform(-0.5, 0.5) * max(W / 2 - half * 1.05, 0.0)
    cy = H / 2 + rng.uniform(-0.5, 0.5) * max(H / 2 - half * 1.05, 0.0)
    M = _homography(cx, cy, half, rng)

    # box of the sign outline in canvas pixels
    out = M @ tm.outlines[label]
    ox, oy = out[0] / out[2], out[1] / out[2]
    box = (int(np.clip(np.floor(ox.min()), 0, W - 1)), int(np.clip(np.floor(oy.min()), 0, H - 1)),
           int(np.clip(np.ceil(ox.max()), 0, W - 1)), int(np.clip(np.ceil(oy.max()), 0, H - 1)))

    # paint the template with weathered, jittered colours
    fade = rng.uniform(0.0, 0.25)
    paints = _BASE_PAINTS + rng.normal(0.0, 0.035, (N_PAINTS, 3))
    paints = paints * (1 - fade) + fade * paints.mean(axis=1, keepdims=True) * 1.1
    tex = np.empty((tm.alpha.shape[1], 4), dtype=np.float32)
    tex[:, :3] = tm.coverage[label] @ paints.astype(np.float32)
    tex[:, 3] = tm.alpha[label]

    # inverse-map the 2x sampling grid into texels and sample bilinearly (outside: transparent)
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
    # uneven light across the plate (shadows, glare)
    gu, gv = rng.normal(0.0, 0.18, 2) / (R / 2)
    shade = 1.0 + gu * (u - (R + 1) / 2) + gv * (v - (R + 1) / 2)
    samp[:, :3] *= np.clip(shade, 0.4, 1.6).astype(np.float32)[:, None]
    sign = _box_downsample(samp, S)

    bg = _background(rng, g)
    if rng.random() < 0.3:  # the pole the sign is mounted on
        pole = _soft_line(g.xs, g.ys, cx / W, cy / H, np.pi / 2 + rng.normal(0, 0.05),
                          rng.uniform(0.15, 0.3) * half / W)
        pole *= g.ys > cy / H
        bg += (np.full(3, rng.uniform(0.3, 0.7)) - bg) * pole[..., None]
    img = sign[..., :3] + (1.0 - sign[..., 3:]) * bg

    if rng.random() < 0.15:  # partial occlusion by a branch, another sign, a sticker ...
        phi = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.55, 1.1) * half
        colour = np.asarray(_OCCLUDER_COLOURS[rng.integers(len(_OCCLUDER_COLOURS))]) + rng.normal(0.0, 0.05, 3)
        m = _soft_ellipse(g.xs, g.ys, (cx + dist * np.cos(phi)) / W, (cy + dist * np.sin(phi)) / H,
                          rng.uniform(0.2, 0.55) * half / W, rng.uniform(0.2, 0.55) * half / H,
                          rng.uniform(0, np.pi), rng.uniform(0.1, 0.5))
        img += (colour + rng.normal(0.0, 0.04, (S, S, 1)) - img) * m[..., None]

    img = _photometric(rng, img, g, S / min(W, H))
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8), (W, H), box


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


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------
def _class_counts(n: int, probs: np.ndarray) -> np.ndarray:
    """Largest-remainder split of n over the classes, so every split mirrors the frequencies."""
    exact = probs * n
    counts = np.floor(exact).astype(np.int64)
    rest = n - int(counts.sum())
    if rest > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:rest]] += 1
    return counts


def _check_probs(class_probs: np.ndarray | None) -> np.ndarray:
    if class_probs is None:
        return GTSRB_CLASS_FREQUENCIES
    probs = np.asarray(class_probs, dtype=float)
    if probs.shape != (N_GTSRB_CLASSES,) or not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.sum() <= 0:
        raise UserError(f"class_probs must be {N_GTSRB_CLASSES} non-negative numbers with a positive sum")
    return probs / probs.sum()


def generate_signs(n: int, *, seed: int, image_size: int = 32,
                   class_probs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render n synthetic signs; the same arguments always give the same arrays.

    Returns (features uint8 (n, S, S, 3), labels uint8 (n,), sizes uint16 (n, 2) as
    (width, height) of the notional original photo, coords uint16 (n, 4) as the sign's
    x1, y1, x2, y2 in that photo).  Classes follow ``class_probs`` (default: GTSRB's
    training frequencies) exactly up to rounding, in shuffled order.
    """
    if n < 0:
        raise UserError(f"number of images must be >= 0, got {n}")
    if not 8 <= image_size <= 512:
        raise UserError(f"image size must be within 8..512, got {image_size}")
    probs = _check_probs(class_probs)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(N_GTSRB_CLASSES), _class_counts(n, probs))).astype(np.uint8)
    tm = _templates(max(64, 2 * image_size))
    g = _grids(image_size)
    features = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    sizes = np.empty((n, 2), dtype=np.uint16)
    coords = np.empty((n, 4), dtype=np.uint16)
    for k in range(n):
        features[k], sizes[k], coords[k] = _render(rng, int(labels[k]), tm, g)
    return features, labels, sizes, coords


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_synthetic_dataset(out_dir: Path, *, n_train: int = 5000, n_valid: int = 1500, n_test: int = 2000,
                            seed: int = 0, image_size: int = 32) -> dict:
    """Write train.p, valid.p, test.p and signnames.csv into out_dir; same seed, same bytes.

    Each split has its own random stream (seed * 1000 + split index), so changing one
    split's size leaves the others untouched.
    """
    counts = {"train": n_train, "valid": n_valid, "test": n_test}
    for split, n in counts.items():
        if n < 0:
            raise UserError(f"number of {split} images must be >= 0, got {n}")
    if seed < 0:
        raise UserError(f"seed must be >= 0, got {seed}")
    if not 8 <= image_size <= 512:
        raise UserError(f"image size must be within 8..512, got {image_size}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, split in enumerate(SPLITS):
        features, labels, sizes, coords = generate_signs(counts[split], seed=seed * 1000 + index, image_size=image_size)
        data = {"features": features, "labels": labels, "sizes": sizes, "coords": coords}
        _atomic_write_bytes(out_dir / f"{split}.p", pickle.dumps(data, protocol=PICKLE_PROTOCOL))
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".signnames.csv.", suffix=".tmp")
    os.close(fd)
    try:
        write_signnames(Path(tmp))
        os.replace(tmp, out_dir / "signnames.csv")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {
        "n_train": n_train,
        "n_valid": n_valid,
        "n_test": n_test,
        "seed": seed,
        "image_size": image_size,
        "synth_version": SYNTH_VERSION,
        "seconds": round(time.perf_counter() - started, 3),
    }
