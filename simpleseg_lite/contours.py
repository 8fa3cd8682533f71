"""Mask → polygons: the contour half of SimpleSeg's annotation pipeline (paper §3.1).

Coordinate convention used everywhere in this project (state it, because it decides the IoU ceiling):

* **pixel-edge coordinates**: pixel ``(row r, col c)`` is the unit square ``[c, c+1] × [r, r+1]``; its
  centre is ``(c + 0.5, r + 0.5)``. A polygon is an ``(N, 2)`` float array of ``(x, y)`` vertices, open
  (the last vertex is *not* a copy of the first), y pointing **down** (screen convention).
* **the rasterizer** (``metrics.polygons_to_rle``, pycocotools) fills a pixel when its *centre* lies
  inside the polygon.

``mask_to_polygons`` traces the "crack" boundary between object and background pixels — the line
through pixel *edges*, not through boundary-pixel centres as ``cv2.findContours`` does. Pixel centres
then sit half a pixel inside or outside the outline, so rasterizing the polygon gives back exactly the
mask (holes filled) at ε = 0. The naive cv2 route loses the outer half-pixel ring: ~24 IoU points on
thin real objects (docs/conventions.md, measured in notebook 01).

How the crack boundary is traced quickly: ``cv2.findContours`` gives the chain of boundary pixels;
each move between consecutive pixels says which pixel sides the boundary walks, so a lookup table
turns the chain into pixel corners in one vectorized pass (``_crack_from_chain``). (Simpler but ~2×
slower: contour a 2× nearest-upsampled crop and map index ``u`` back to ``ceil(u / 2)``.)

Departures from the released SimpleSeg data code, and why:

* **ε relative to each contour's perimeter** by default (``epsilon_mode="perimeter"``), the released
  code's rule; with ε = 0.005 it reproduces the paper's ~221 tokens per object. ``"side"`` takes ε as a
  fraction of the longer image side instead.
* **clockwise on screen, explicit.** OpenCV's outer contours run counter-clockwise on screen; we
  reverse them so the shoelace signed area (y down) is positive, and start at a documented canonical
  vertex: the top-most, then left-most one.
* **holes are dropped** (as in the released code): the answer format unions polygons and cannot
  subtract. ``fidelity`` reports IoU both against the hole-filled mask and the original one.
* **one polygon per connected component** (8-connectivity, OpenCV's rule); components are ordered
  top-to-bottom, then left-to-right by their start vertex.

Taught in ``notebooks/01_contour_serialization.py`` and ``notebooks/02_epsilon_tradeoffs.py``.
"""

from __future__ import annotations

import cv2
import numpy as np

EPSILON_MODES = ("perimeter", "side")


def as_binary_mask(mask) -> np.ndarray:
    """Validate a mask and return it as a C-contiguous ``uint8`` array, shape ``(H, W)``, nonzero = object.

    A ``uint8`` input is passed through (OpenCV treats every nonzero value as the object); a ``bool``
    one is viewed as ``uint8`` without a copy; anything else is compared with 0.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] in (1, 3, 4):
        mask = mask[..., 0] if mask.shape[2] == 1 else mask[..., :3].max(axis=2)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H, W); got shape {mask.shape}")
    if mask.size == 0:
        raise ValueError(f"the mask has no pixels (shape {mask.shape})")
    if mask.dtype == np.bool_:
        mask = mask.view(np.uint8)
    elif mask.dtype != np.uint8:
        mask = (mask != 0).view(np.uint8)
    return np.ascontiguousarray(mask)


def signed_area(polygon: np.ndarray) -> float:
    """Shoelace area of an open polygon in screen coordinates (y down).

    Positive means **clockwise on screen**; negative means counter-clockwise.
    """
    x, y = polygon[:, 0], polygon[:, 1]
    # A = 1/2 Σ (x_i y_{i+1} − x_{i+1} y_i), indices mod N
    return 0.5 * float(x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1])


def canonical_start(polygon: np.ndarray) -> int:
    """Index of the canonical first vertex: the top-most (smallest y), then left-most (smallest x)."""
    top = np.flatnonzero(polygon[:, 1] == polygon[:, 1].min())
    return int(top[np.argmin(polygon[top, 0])])


def orient(polygon: np.ndarray, clockwise: bool = True) -> np.ndarray:
    """Return ``polygon`` traversed clockwise on screen (or counter-clockwise), starting at the
    canonical vertex (top-most, then left-most). The vertex set is unchanged."""
    polygon = np.asarray(polygon, dtype=np.float64)
    if len(polygon) >= 3 and (signed_area(polygon) >= 0) != clockwise:
        polygon = polygon[::-1]
    k = canonical_start(polygon)
    return np.concatenate([polygon[k:], polygon[:k]]) if k else np.ascontiguousarray(polygon)


# Crack tracing from OpenCV's pixel chain. OpenCV's outer contour visits boundary pixels
# counter-clockwise on screen (object on the walker's left). Each move P_i → P_{i+1} between
# 8-neighbours tells which side of a pixel the walk is on: a pixel's sides in walking order are
# top (0), left (1), bottom (2), right (3). Arriving by a move, the walk starts on side _ENTRY[move];
# leaving by a move, it ends on side _EXIT[move]; in between it walks the sides s_in, s_in+1, … s_out
# (mod 4), and every side ends at the corner _SIDE_END[side] of the pixel.
_ENTRY = np.full(9, -1, dtype=np.int64)
_EXIT = np.full(9, -1, dtype=np.int64)
for (_dx, _dy), _in, _out in [
    ((-1, 0), 0, 0), ((0, 1), 1, 1), ((1, 0), 2, 2), ((0, -1), 3, 3),  # W, S, E, N
    ((-1, -1), 3, 0), ((-1, 1), 0, 1), ((1, 1), 1, 2), ((1, -1), 2, 3),  # NW, SW, SE, NE
]:
    _ENTRY[(_dx + 1) * 3 + _dy + 1], _EXIT[(_dx + 1) * 3 + _dy + 1] = _in, _out
_SIDE_END = np.array([[0, 0], [0, 1], [1, 1], [1, 0]], dtype=np.int64)  # TL, BL, BR, TR


def _crack_from_chain(chain: np.ndarray) -> np.ndarray:
    """(N, 2) int pixel chain (x, y) of one outer contour → its crack polygon (pixel-edge corners)."""
    n = len(chain)
    if n == 1:  # an isolated pixel: all four sides
        return chain + _SIDE_END
    move = np.empty_like(chain)
    move[:-1] = chain[1:] - chain[:-1]
    move[-1] = chain[0] - chain[-1]
    code = (move[:, 0] + 1) * 3 + move[:, 1] + 1
    s_out = _EXIT[code]
    s_in = np.empty_like(s_out)
    s_in[1:], s_in[0] = _ENTRY[code[:-1]], _ENTRY[code[-1]]  # the move that arrived at pixel i
    sides_walked = (s_out - s_in) % 4 + 1
    pixel = np.repeat(np.arange(n), sides_walked)
    first = np.cumsum(sides_walked) - sides_walked
    side = (s_in[pixel] + np.arange(len(pixel)) - first[pixel]) % 4
    return chain[pixel] + _SIDE_END[side]


def crack_contours(mask) -> list[np.ndarray]:
    """Outer boundaries of every connected component, traced along pixel edges.

    Returns a list of ``(N, 2)`` float64 arrays, (x, y) in pixel-edge coordinates, open, with every
    unit step as a vertex (collinear vertices are removed later by ``sparsify``), counter-clockwise
    on screen (OpenCV's order). Rasterizing them with the pixel-centre rule gives back the mask with
    holes filled, exactly (``tests/test_contours.py`` checks it on thousands of random masks).
    """
    found, _ = cv2.findContours(as_binary_mask(mask), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [_crack_from_chain(c[:, 0, :].astype(np.int64)).astype(np.float64) for c in found]


def sparsify(polygon: np.ndarray, epsilon: float, epsilon_mode: str = "perimeter", image_size=None) -> np.ndarray:
    """Douglas–Peucker sparsification (``cv2.approxPolyDP``) of one closed polygon.

    ``epsilon_mode="perimeter"``: tolerance = ε × this polygon's perimeter (pixels), the released rule.
    ``epsilon_mode="side"``: tolerance = ε × max(W, H) of the image (``image_size=(W, H)`` required).
    Never returns fewer than 3 vertices when the input has ≥ 3: if DP collapses a thin polygon to a
    segment, the tolerance is halved until 3 vertices survive (pycocotools would read a 2-point
    polygon as a box).
    """
    if epsilon_mode not in EPSILON_MODES:
        raise ValueError(f"epsilon_mode must be one of {EPSILON_MODES}, got {epsilon_mode!r}")
    if not np.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be a finite number ≥ 0, got {epsilon!r}")
    if len(polygon) <= 3:
        return polygon
    pts = polygon.astype(np.float32).reshape(-1, 1, 2)
    if epsilon == 0:
        tol = 0.0
    elif epsilon_mode == "perimeter":
        tol = epsilon * cv2.arcLength(pts, closed=True)
    else:
        if image_size is None:
            raise ValueError("epsilon_mode='side' needs image_size=(W, H)")
        tol = epsilon * max(image_size)
    # a floor of 1e-3 px drops exactly collinear vertices even at ε = 0 (still lossless)
    tol = max(tol, 1e-3)
    approx = cv2.approxPolyDP(pts, tol, closed=True)
    while len(approx) < 3 and tol > 1e-3:  # DP collapsed a thin sliver: the coarsest ≥ 3-vertex version
        tol = max(tol / 2, 1e-3)
        approx = cv2.approxPolyDP(pts, tol, closed=True)
    return approx[:, 0, :].astype(np.float64) if len(approx) >= 3 else polygon


def mask_to_polygons(
    mask,
    epsilon: float = 0.005,
    epsilon_mode: str = "perimeter",
    clockwise: bool = True,
) -> list[np.ndarray]:
    """Binary mask (H, W) → list of polygons, one per connected component (holes dropped).

    Each polygon is an ``(N, 2)`` float64 array of (x, y) **pixel-edge** coordinates (see module
    docstring), open, clockwise on screen (y down) unless ``clockwise=False``, starting at its top-most
    then left-most vertex. Components are sorted by that start vertex (top-to-bottom, left-to-right).
    An empty mask gives ``[]``. ``epsilon=0`` is lossless against the hole-filled mask.
    """
    mask = as_binary_mask(mask)
    size = (mask.shape[1], mask.shape[0])
    polygons = [orient(sparsify(c, epsilon, epsilon_mode, size), clockwise) for c in crack_contours(mask)]
    polygons = [p for p in polygons if len(p) >= 3]
    polygons.sort(key=lambda p: (p[0, 1], p[0, 0]))
    return polygons


def fill_holes(mask) -> np.ndarray:
    """The mask with every hole filled (what a hole-free polygon answer can reach), uint8 0/1."""
    mask = as_binary_mask(mask)
    found, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, found, -1, 1, thickness=cv2.FILLED)
    return filled


def pixel_centre_contours(mask) -> list[np.ndarray]:
    """The *naive* route, kept for comparison in notebook 01: ``cv2.findContours`` vertices sit on
    boundary-pixel centres, so ``+0.5`` puts them in pixel-edge coordinates — half a pixel inside the
    true outline. Not used by the pipeline."""
    found, _ = cv2.findContours(as_binary_mask(mask), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c[:, 0, :].astype(np.float64) + 0.5 for c in found]
