"""Drawing primitives for the sign templates: a supersampled painter over template space.

The templates are drawn with pure numpy, so this module holds the few shapes every sign is made
of (discs, rings, polygons, capsules, stripes, 5x7 bitmap text, arrows) and the paints they are
filled with. A ``_Painter`` only records which paint covers each sample; anti-aliasing comes from
box-averaging the 3x supersampled grid, so no filter and no imaging library is needed.
"""

from __future__ import annotations

import numpy as np

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
# Painter
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
