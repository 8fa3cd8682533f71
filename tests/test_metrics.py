"""Rasterization conventions, IoU in RLE space, gIoU / cIoU / Prec@0.5, weak labels, shape metrics."""

import numpy as np
import pytest

from simpleseg_lite.metrics import (
    answer_iou,
    boundary_f_score,
    box_iou,
    ciou,
    giou,
    interior_point,
    intersection_union,
    mask_boundary,
    mask_box,
    mask_to_rle,
    polygons_box,
    polygons_centroid,
    polygons_iou,
    polygons_to_rle,
    prec_at,
    rasterize,
    vertex_distance,
)

SQUARE = np.array([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]])


def test_pixel_centre_rule():
    # the polygon [2, 6] x [2, 6] in pixel-edge coordinates covers pixels 2..5 exactly
    m = rasterize([SQUARE], 8, 8)
    assert m.sum() == 16 and m[2:6, 2:6].all()


@pytest.mark.parametrize(
    "polys,expected",
    [
        ([SQUARE], 1.0),  # identical
        ([SQUARE + [0.25, 0]], 1 / 3),  # shifted by half its width
        ([SQUARE + [0.5, 0]], 0.0),  # disjoint (touching)
        ([], 0.0),  # no prediction
        ([SQUARE[:2]], 0.0),  # a 2-point polygon is ignored, never read as a box
        ([np.array([[np.nan, 0], [1, 0], [1, 1]])], 0.0),  # NaN vertices are ignored
        ([SQUARE * 1e12], 0.0),  # absurd coordinates are clipped (pycocotools would hang)
        ([SQUARE, SQUARE], 1.0),  # duplicate parts: union, not sum
    ],
)
def test_polygons_iou(polys, expected):
    gt = mask_to_rle(rasterize([SQUARE], 40, 40))
    assert polygons_iou(polys, gt) == pytest.approx(expected, abs=1e-9)


def test_answer_iou_matches_polygons_iou_and_invalid_is_zero():
    gt = mask_to_rle(rasterize([SQUARE], 40, 40))
    assert answer_iou("[[[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]]", gt) == 1.0
    assert answer_iou("garbage", gt) == 0.0


def test_both_empty_scores_one():
    empty = mask_to_rle(np.zeros((5, 5), np.uint8))
    assert polygons_iou([], empty) == 1.0 and answer_iou("no object", empty) == 1.0


def test_255_valued_masks_are_binarized():
    m = np.zeros((6, 6), np.uint8)
    m[1:4, 1:4] = 255
    assert mask_to_rle(m)["area"] == 9
    inter, union = intersection_union(mask_to_rle(m), mask_to_rle(m > 0))
    assert inter == union == 9


def test_giou_and_ciou():
    # gIoU averages per sample; cIoU pools pixels, so big objects weigh more
    assert giou([1.0, 0.0]) == 0.5
    assert ciou([90, 0], [100, 10]) == pytest.approx(90 / 110)
    assert np.isnan(giou([])) and np.isnan(ciou([], []))


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ((0, 0, 2, 2), (0, 0, 2, 2), 1.0),  # identical
        ((0, 0, 2, 2), (1, 0, 3, 2), 1 / 3),  # half overlap
        ((0, 0, 1, 1), (2, 2, 3, 3), 0.0),  # disjoint
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # degenerate
    ],
)
def test_box_iou(a, b, expected):
    assert box_iou(a, b) == pytest.approx(expected)


def test_prec_at_half_is_strict_and_counts_misses():
    gt = [(0, 0, 2, 2)] * 3
    pred = [(0, 0, 2, 2), (0, 0, 1, 2), None]  # hit, IoU exactly 0.5 (not > 0.5), missing
    assert prec_at(pred, gt) == pytest.approx(1 / 3)


def test_weak_labels():
    m = rasterize([SQUARE], 40, 40)
    assert np.allclose(mask_box(m), [10, 10, 30, 30])
    assert np.allclose(polygons_box([SQUARE]), [0.25, 0.25, 0.75, 0.75])
    assert np.allclose(polygons_centroid([SQUARE]), [0.5, 0.5])
    assert mask_box(np.zeros((3, 3))) is None and interior_point(np.zeros((3, 3))) is None


def test_interior_point_lies_on_a_ring():
    yy, xx = np.mgrid[:41, :41] - 20
    ring = ((np.hypot(xx, yy) <= 18) & (np.hypot(xx, yy) > 10)).astype(np.uint8)
    x, y = interior_point(ring)
    assert ring[int(y), int(x)] == 1  # the centroid (20.5, 20.5) would be in the hole


def test_polygons_to_rle_union_of_parts():
    # two halves of the square: their union is the square, pixel for pixel
    left = np.array([[0.25, 0.25], [0.5, 0.25], [0.5, 0.75], [0.25, 0.75]])
    right = left + [0.25, 0]
    union = rasterize([left, right], 20, 20)
    assert (union == rasterize([SQUARE], 20, 20)).all()
    assert polygons_to_rle([left, right], 20, 20)["size"] == [20, 20]


def _square_mask(x0=10, y0=10, side=20, shift=(0, 0), size=48):
    m = np.zeros((size, size), bool)
    m[y0 + shift[1]: y0 + shift[1] + side, x0 + shift[0]: x0 + shift[0] + side] = True
    return m


def _line_mask(row=20, size=48):
    m = np.zeros((size, size), bool)
    m[row, 5:40] = True
    return m


_YY, _XX = np.mgrid[:48, :48] - 24
_DISC = np.hypot(_XX, _YY) <= 18
_RING = _DISC & (np.hypot(_XX, _YY) > 9)
_EMPTY = np.zeros((48, 48), bool)
# a ring against its filled disc: only the ring's outer boundary pixels match (recall 1)
_P_RING = mask_boundary(_DISC).sum() / mask_boundary(_RING).sum()


@pytest.mark.parametrize(
    "pred,gt,tolerance,expected",
    [
        (_square_mask(), _square_mask(), 0, 1.0),  # identical square, even at zero tolerance
        (_square_mask(shift=(1, 0)), _square_mask(), 0, 0.5),  # 1 px shift: only the top/bottom rows overlap
        (_square_mask(shift=(1, 0)), _square_mask(), 1, 1.0),  # ... and all within 1 px
        (_square_mask(side=10), _square_mask(x0=30, y0=30, side=10), 2, 0.0),  # far apart
        (_RING, _RING, 0, 1.0),  # a ring: outer and hole boundaries both count
        (_RING, _DISC, 2, 2 * _P_RING / (1 + _P_RING)),  # ring vs filled disc: the hole's outline is extra
        (_line_mask(), _line_mask(), 0, 1.0),  # a one-pixel line is all boundary
        (_line_mask(21), _line_mask(), 1, 1.0),  # a line one row lower is within 1 px
        (_EMPTY, _EMPTY, 2, 1.0),  # both empty
        (_square_mask(), _EMPTY, 2, 0.0),  # nothing to match: prediction on an empty target
        (_EMPTY, _square_mask(), 2, 0.0),  # empty prediction
        (_square_mask(x0=0, y0=0), _square_mask(x0=0, y0=0), 0, 1.0),  # touching the image border
    ],
)
def test_boundary_f_score(pred, gt, tolerance, expected):
    assert boundary_f_score(pred, gt, tolerance) == pytest.approx(expected, abs=1e-9)


def test_mask_boundary_of_a_square_is_its_outline():
    b = mask_boundary(_square_mask(side=5))
    assert b.sum() == 16 and not b[11:14, 11:14].any()  # 4·5 − 4 outline pixels, hollow inside


def test_boundary_f_score_rejects_different_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        boundary_f_score(np.ones((4, 4)), np.ones((5, 5)))


_MIDPOINTS = np.array([[0.25, 0.25], [0.5, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]])


@pytest.mark.parametrize(
    "pred,gt,expected",
    [
        ([SQUARE], [SQUARE], 0.0),  # identical
        ([SQUARE[[2, 3, 0, 1]]], [SQUARE], 0.0),  # same outline, another start vertex
        ([_MIDPOINTS], [SQUARE], 0.0),  # an extra vertex on an edge: distance to edges, not vertices
        ([SQUARE + [0.1, 0]], [SQUARE], 0.05),  # shifted by d = 0.1: two of four vertices off by d, each way
        ([(SQUARE - 0.5) * 1.2 + 0.5], [SQUARE], (0.05 * np.sqrt(2) + 0.05) / 2),  # 20 % larger, concentric
        ([SQUARE, SQUARE + [2, 0]], [SQUARE, SQUARE + [2, 0]], 0.0),  # two parts, both matched
        ([SQUARE, SQUARE[:2]], [SQUARE], 0.0),  # a 2-vertex polygon is ignored, like the rasterizer does
        ([], [SQUARE], np.nan),  # no prediction: undefined
        ([SQUARE], [], np.nan),  # no ground truth: undefined
        ([np.array([[np.nan, 0], [1, 0], [1, 1]])], [SQUARE], np.nan),  # only a non-finite polygon
    ],
)
def test_vertex_distance(pred, gt, expected):
    d = vertex_distance(pred, gt)
    if np.isnan(expected):
        assert np.isnan(d)
    else:
        assert d == pytest.approx(expected, abs=1e-12)
        assert vertex_distance(gt, pred) == pytest.approx(d, abs=1e-12)  # symmetric


def test_vertex_distance_accepts_parser_output():
    from simpleseg_lite.parse import parse_polygons

    polys = parse_polygons("[[[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]]").polygons
    assert vertex_distance(polys, [SQUARE]) == 0.0
