"""Mask → polygon: losslessness, orientation, start vertex, components, holes, ε."""

import cv2
import numpy as np
import pytest

from simpleseg_lite.contours import (
    crack_contours,
    fill_holes,
    mask_to_polygons,
    orient,
    signed_area,
    sparsify,
)
from simpleseg_lite.metrics import mask_to_rle, polygons_iou, rasterize
from simpleseg_lite.serialize import normalize


def _mask(h, w, *rects):
    m = np.zeros((h, w), np.uint8)
    for x0, y0, x1, y1 in rects:
        m[y0:y1, x0:x1] = 1
    return m


def _ring(size=21, outer=9, inner=4):
    yy, xx = np.mgrid[:size, :size] - size // 2
    r = np.hypot(xx, yy)
    return ((r <= outer) & (r > inner)).astype(np.uint8)


SHAPES = {
    # a filled square
    "square": _mask(12, 12, (3, 3, 9, 9)),
    # an L: one concave corner
    "L": _mask(10, 10, (2, 2, 4, 8), (2, 6, 8, 8)),
    # a ring: the hole is dropped, the outline is the outer circle
    "ring": _ring(),
    # a one-pixel-wide horizontal line
    "hline": _mask(5, 20, (2, 2, 18, 3)),
    # a one-pixel-wide diagonal line (8-connected staircase)
    "diagonal": np.eye(12, dtype=np.uint8),
    # a single pixel
    "pixel": _mask(5, 5, (2, 2, 3, 3)),
    # two separate parts
    "two_parts": _mask(12, 20, (1, 1, 5, 5), (10, 6, 18, 11)),
    # the whole image
    "full": np.ones((7, 9), np.uint8),
    # touching the border
    "corner": _mask(8, 8, (0, 0, 3, 3)),
    # a comb: thin teeth (the case where pixel-centre contours lose the most)
    "comb": _mask(12, 13, (0, 0, 13, 2), (0, 2, 1, 12), (4, 2, 5, 12), (8, 2, 9, 12), (12, 2, 13, 12)),
}


@pytest.mark.parametrize("name", SHAPES)
def test_epsilon_zero_is_lossless(name):
    mask = SHAPES[name]
    h, w = mask.shape
    polys = mask_to_polygons(mask, epsilon=0)
    assert (rasterize(normalize(polys, w, h, decimals=6), h, w) == fill_holes(mask)).all()


def test_lossless_on_random_masks():
    # thousands of random blobs and noise: pinches, spikes, single pixels, diagonal contacts
    rng = np.random.default_rng(0)
    for t in range(1500):
        h, w = rng.integers(1, 24, 2)
        m = (rng.random((h, w)) < rng.uniform(0.05, 0.9)).astype(np.uint8)
        if t % 3 == 0:
            m = cv2.medianBlur(m * 255, 3) // 255
        if not m.any():
            continue
        polys = [p for p in crack_contours(m) if len(p) >= 3]
        assert (rasterize(normalize(polys, w, h, decimals=8), h, w) == fill_holes(m)).all(), t


@pytest.mark.parametrize("name", SHAPES)
def test_clockwise_and_canonical_start(name):
    for p in mask_to_polygons(SHAPES[name], epsilon=0.01):
        assert signed_area(p) > 0  # clockwise on screen (y down)
        top = p[:, 1].min()
        assert p[0, 1] == top and p[0, 0] == p[p[:, 1] == top, 0].min()


def test_orient_counterclockwise_and_idempotent():
    sq = np.array([[0, 0], [0, 1], [1, 1], [1, 0]], float)  # counter-clockwise on screen
    cw = orient(sq)
    assert signed_area(cw) > 0 and (orient(cw) == cw).all()
    assert signed_area(orient(sq, clockwise=False)) < 0


@pytest.mark.parametrize(
    "name,parts",
    [("two_parts", 2), ("ring", 1), ("square", 1), ("comb", 1)],  # one polygon per component
)
def test_one_polygon_per_component(name, parts):
    assert len(mask_to_polygons(SHAPES[name])) == parts


def test_components_sorted_top_to_bottom():
    polys = mask_to_polygons(_mask(20, 20, (10, 12, 14, 16), (2, 2, 6, 6)))
    assert polys[0][0, 1] < polys[1][0, 1]


def test_holes_dropped_and_scored_honestly():
    ring = SHAPES["ring"]
    polys = normalize(mask_to_polygons(ring, epsilon=0), *ring.shape[::-1], decimals=6)
    assert polygons_iou(polys, mask_to_rle(fill_holes(ring))) == 1.0
    assert polygons_iou(polys, mask_to_rle(ring)) < 1.0  # the hole costs IoU against the original


def test_empty_mask_gives_no_polygon():
    assert mask_to_polygons(np.zeros((5, 5), np.uint8)) == []


@pytest.mark.parametrize("bad", [np.zeros((0, 5)), np.zeros((2, 3, 5, 1)), np.zeros(7)])
def test_bad_mask_shapes_raise_clearly(bad):
    with pytest.raises(ValueError, match="mask"):
        mask_to_polygons(bad)


@pytest.mark.parametrize("eps,mode", [(-0.1, "perimeter"), (float("nan"), "perimeter"), (0.01, "diameter")])
def test_bad_epsilon_raises(eps, mode):
    with pytest.raises(ValueError):
        mask_to_polygons(SHAPES["square"], epsilon=eps, epsilon_mode=mode)


def test_epsilon_reduces_vertices_monotonically():
    disk = cv2.circle(np.zeros((200, 200), np.uint8), (100, 100), 80, 1, -1)
    counts = [sum(len(p) for p in mask_to_polygons(disk, e)) for e in (0, 0.001, 0.005, 0.02)]
    assert counts == sorted(counts, reverse=True) and counts[-1] >= 3


def test_side_mode_uses_image_side():
    disk = cv2.circle(np.zeros((200, 200), np.uint8), (100, 100), 20, 1, -1)
    side = sum(len(p) for p in mask_to_polygons(disk, 0.005, "side"))
    perim = sum(len(p) for p in mask_to_polygons(disk, 0.005, "perimeter"))
    assert side != perim
    with pytest.raises(ValueError, match="image_size"):
        sparsify(np.array([[0, 0], [5, 0], [5, 5], [0, 5], [0, 2]], float), 0.1, "side")


def test_thin_sliver_keeps_three_vertices():
    # DP would collapse a 1-px line to a segment (read as a box by pycocotools); we keep ≥ 3 vertices
    polys = mask_to_polygons(SHAPES["hline"], epsilon=0.5)
    assert len(polys) == 1 and len(polys[0]) >= 3
