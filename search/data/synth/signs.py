"""What each of GTSRB's 43 classes looks like, drawn once per resolution into templates.

The class ids and their order are GTSRB's (see ``search.data.signnames``): one drawing per class,
left/right pairs share a drawing mirrored. ``_templates`` turns them into per-class paint
coverage and rim outlines, cached, so rendering an image only colours and warps a template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..signnames import N_GTSRB_CLASSES
from .drawing import BLACK, GREEN, GREY, N_PAINTS, RED, WHITE, YELLOW, _arc, _bezier, _Painter, _scale_about_centroid
from .glyphs import (
    _GS,
    _INVERTED_TRIANGLE,
    _OCTAGON,
    _car_front,
    _digits,
    _end_bars,
    _end_of,
    _g,
    _mandatory,
    _person,
    _prohibitory,
    _truck_front,
    _truck_side,
    _warning,
)


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
    car = [
        (-0.55, -0.38),
        (0.55, -0.38),
        (0.55, -0.62),
        (0.3, -0.62),
        (0.18, -0.9),
        (-0.25, -0.9),
        (-0.38, -0.62),
        (-0.55, -0.62),
    ]
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
    for a, b in (
        ((0.35, -0.05), (0.85, 0.2)),
        ((0.3, 0.0), (0.55, 0.45)),  # legs
        ((-0.45, 0.25), (-0.85, 0.85)),
        ((-0.5, 0.25), (-0.5, 0.95)),
    ):
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
