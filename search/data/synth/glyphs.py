"""Sign parts shared by several classes: the plates and the pictogram pieces on them.

GTSRB's classes come in families that share a plate (red-ringed disc, warning triangle, blue
disc, the "end of" disc) and reuse pictogram pieces (speed-limit digits, cars, lorries, walking
figures); drawing each piece once here keeps the per-class drawings in ``signs`` short, and makes
classes of one family differ only where the real signs differ.
"""

from __future__ import annotations

import numpy as np

from .drawing import BLACK, BLUE, GREY, RED, WHITE, Point, _Painter, _scale_about_centroid

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
