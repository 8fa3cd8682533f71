"""Point ordering: the order in which a polygon's vertices are written (paper §4 ablation).

SimpleSeg writes every polygon **clockwise on screen** (y down) from a fixed start vertex; the paper's
ablation finds that unordered or alternative sequences make generation "chaotic" and cost tokens.
These orderings let notebook 03 show what each does to the sequence and the shape, and let SFT run
the ablation:

* ``clockwise``: the canonical order (``contours.orient``): clockwise, start at the top-most then
  left-most vertex.
* ``counterclockwise``: the same vertices reversed, same start vertex.
* ``random_start``: clockwise, but starting at a random vertex (same shape, a different string).
* ``shuffled``: the vertices in random order — the *set* is right, the *polygon* is not: rasterizing
  it draws a self-intersecting star.

Polygons are ``(N, 2)`` (x, y) arrays in any units. Taught in ``notebooks/03_point_ordering.py``.
"""

from __future__ import annotations

import numpy as np

from .contours import orient

ORDERINGS = ("clockwise", "counterclockwise", "random_start", "shuffled")


def reorder(polygon, ordering: str = "clockwise", rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Return ``polygon``'s vertices in the given ordering (see the module docstring)."""
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
    p = orient(polygon, clockwise=ordering != "counterclockwise")
    if ordering in ("clockwise", "counterclockwise"):
        return p
    rng = np.random.default_rng(rng)
    if ordering == "random_start":
        return np.roll(p, -int(rng.integers(len(p))), axis=0)
    return p[rng.permutation(len(p))]


def reorder_all(polygons, ordering: str = "clockwise", rng=None) -> list[np.ndarray]:
    """``reorder`` every polygon of an answer with one random generator."""
    rng = np.random.default_rng(rng)
    return [reorder(p, ordering, rng) for p in polygons]


def turning_number(polygon) -> float:
    """Total turning of the edge direction divided by 2π: +1 for a simple clockwise-on-screen polygon,
    −1 counter-clockwise; shuffled vertices give large or fractional values (a tangled path)."""
    p = np.asarray(polygon, dtype=np.float64)
    e = np.diff(np.vstack([p, p[:1]]), axis=0)
    angle = np.arctan2(e[:, 1], e[:, 0])
    turn = np.diff(np.append(angle, angle[0]))
    turn = (turn + np.pi) % (2 * np.pi) - np.pi
    return float(turn.sum() / (2 * np.pi))


def path_length(polygon) -> float:
    """Closed path length: a shuffled polygon's path is much longer than its outline."""
    p = np.asarray(polygon, dtype=np.float64)
    return float(np.linalg.norm(np.diff(np.vstack([p, p[:1]]), axis=0), axis=1).sum())
