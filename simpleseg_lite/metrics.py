"""Rasterization, IoU and the benchmark metrics: gIoU, cIoU (RES) and Prec@0.5 (REC), plus two shape metrics.

One rasterizer for the whole project: pycocotools' polygon → RLE, which fills a pixel when its
**centre** ``(c + 0.5, r + 0.5)`` lies inside the polygon (pixel-edge coordinates, see ``contours``).
Masks are compared in run-length-encoded space — the reward's hot path never decodes a full mask.
The IoU reward (``rewards``) calls ``answer_iou`` below, the very function evaluation uses.

Conventions (docs/conventions.md, the Text4Seg protocol SimpleSeg inherits):

* **gIoU** = mean over referring sentences of I / U; a sample whose prediction and ground truth are
  both empty scores 1 (Text4Seg adds 1e-5 to U; we special-case 0/0 instead — same numbers otherwise).
* **cIoU** = Σ I / Σ U over the split.
* An unparseable answer is an empty mask: IoU 0, still counted.
* **Prec@0.5** (REC): IoU(predicted box, ground-truth box) **> 0.5**, with the ground-truth box taken as
  the tight box of the ground-truth *mask* (Text4Seg's choice; the COCO REC convention uses the
  annotated box and ≥ 0.5 — within a pixel of this on RefCOCO). The predicted box is the tight box of
  the predicted polygons, or a parsed box answer for the text→box task.

pycocotools pitfalls handled here (docs/traps.md): a numpy array is read as boxes, a 2-point polygon as a
box, and a NaN or 1e12 coordinate hangs it — polygons are sanitized and clipped first.

The paper's limitations section asks for boundary F-score and vertex-wise metrics, which IoU hides
(a ragged outline can keep a high IoU): ``boundary_f_score`` (DAVIS's boundary measure) and
``vertex_distance`` (a Chamfer distance between outlines) are at the end of this module.

Taught in ``notebooks/01_contour_serialization.py`` and ``notebooks/07_evaluation.py``.
"""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import _mask as _coco
from pycocotools import mask as mask_utils

from .contours import as_binary_mask
from .parse import parse_polygons

# Coordinates are clipped to this normalized range before rasterizing (pycocotools hangs on huge values).
_SAFE = (-1.0, 2.0)


def _flat_polygons(polygons_norm, height: int, width: int) -> list[list[float]]:
    """Normalized polygons → pycocotools' list of flat ``[x0, y0, x1, y1, ...]`` pixel lists (≥ 3 vertices)."""
    scale = np.array([width, height], dtype=np.float64)
    flat = []
    for p in polygons_norm:
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        if len(p) < 3 or not np.all(np.isfinite(p)):
            continue
        flat.append((np.clip(p, *_SAFE) * scale).ravel().tolist())
    return flat


def empty_rle(height: int, width: int) -> dict:
    return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))


def mask_to_rle(mask) -> dict:
    """Binary mask (H, W) → pycocotools RLE (``{"size", "counts"}`` plus a cached ``"area"``)."""
    # pycocotools counts runs of 0 vs 1, so a 255-valued mask must be binarized first
    binary = np.asfortranarray(as_binary_mask(mask) != 0, dtype=np.uint8)
    rle = mask_utils.encode(binary)
    rle["area"] = int(binary.sum())  # cached for the reward's hot path
    return rle


def polygons_to_rle(polygons_norm, height: int, width: int) -> dict:
    """Normalized polygons (list of ``(N, 2)`` (x, y)) → one RLE of their union, image ``height × width``."""
    flat = _flat_polygons(polygons_norm, height, width)
    if not flat:
        return empty_rle(height, width)
    rles = mask_utils.frPyObjects(flat, height, width)
    return rles[0] if len(rles) == 1 else mask_utils.merge(rles)


def rasterize(polygons_norm, height: int, width: int) -> np.ndarray:
    """Normalized polygons → uint8 mask (H, W). For pictures and tests; metrics stay in RLE space."""
    return mask_utils.decode(polygons_to_rle(polygons_norm, height, width))


def intersection_union(pred_rle: dict, gt_rle: dict) -> tuple[int, int]:
    """(|P ∩ G|, |P ∪ G|) in pixels, computed on RLEs."""
    inter = int(mask_utils.area(mask_utils.merge([pred_rle, gt_rle], intersect=True)))
    return inter, int(mask_utils.area(pred_rle)) + int(mask_utils.area(gt_rle)) - inter


def iou_from(inter: int, union: int) -> float:
    """I / U, with 0 / 0 (both masks empty) scored 1."""
    return 1.0 if union == 0 else inter / union


def rle_iou(pred_rle: dict, gt_rle: dict) -> float:
    """IoU of two RLEs (both empty → 1)."""
    return iou_from(*intersection_union(pred_rle, gt_rle))


def polygons_iou(polygons_norm, gt_rle: dict) -> float:
    """IoU of normalized polygons against a precomputed ground-truth RLE (sanitizes its input)."""
    h, w = gt_rle["size"]
    return rle_iou(polygons_to_rle(polygons_norm, h, w), gt_rle)


def parsed_areas(polygons, gt_rle: dict) -> tuple[int, int, int]:
    """(intersection, predicted area, ground-truth area) in pixels for polygons straight from
    ``parse_polygons`` (finite, clipped to [0, 1], ≥ 3 vertices, so no sanitizing), rasterized with
    pycocotools' C calls at the ground truth's size, never decoded. The rewards' hot path."""
    h, w = gt_rle["size"]
    gt_area = gt_rle.get("area")  # mask_to_rle stores it; pycocotools ignores extra keys
    if gt_area is None:
        gt_area = int(_coco.area([gt_rle])[0])
    if not polygons:
        return 0, 0, int(gt_area)
    scale = (float(w), float(h))
    rles = _coco.frPoly([(p * scale).ravel() for p in polygons], h, w)  # 1-D float64 arrays, no list detour
    pred = rles[0] if len(rles) == 1 else _coco.merge(rles, 0)
    inter, pred_area = _coco.area([_coco.merge([pred, gt_rle], 1), pred]).tolist()  # one C call, two areas
    return int(inter), int(pred_area), int(gt_area)


def parsed_iou(polygons, gt_rle: dict) -> float:
    """IoU of parsed polygons (see ``parsed_areas``) with ``gt_rle``; no polygons against an empty mask is 1."""
    inter, pred_area, gt_area = parsed_areas(polygons, gt_rle)
    if not polygons:
        return 1.0 if gt_area == 0 else 0.0
    return iou_from(inter, pred_area + gt_area - inter)


def answer_iou(text: str, gt_rle: dict) -> float:
    """IoU of a model's answer text against the ground truth; an invalid answer is an empty mask."""
    result = parse_polygons(text)
    return parsed_iou(result.polygons if result.valid else [], gt_rle)


# --- split-level metrics -------------------------------------------------------------------------


def giou(ious) -> float:
    """gIoU = mean of per-sentence IoUs."""
    ious = np.asarray(list(ious), dtype=np.float64)
    return float(ious.mean()) if ious.size else float("nan")


def ciou(intersections, unions) -> float:
    """cIoU = Σ I / Σ U (cumulative IoU over the split)."""
    total_u = float(np.sum(unions))
    return float(np.sum(intersections)) / total_u if total_u > 0 else float("nan")


def box_iou(a, b) -> float:
    """IoU of two boxes ``(x0, y0, x1, y1)`` in the same units (pixels or normalized)."""
    ax0, ay0, ax1, ay1 = (float(v) for v in a)
    bx0, by0, bx1, by1 = (float(v) for v in b)
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def prec_at(pred_boxes, gt_boxes, threshold: float = 0.5) -> float:
    """Prec@threshold: the fraction of samples whose box IoU is **> threshold**; a missing
    predicted box (``None``) counts as a miss."""
    hits = [p is not None and box_iou(p, g) > threshold for p, g in zip(pred_boxes, gt_boxes, strict=True)]
    return float(np.mean(hits)) if hits else float("nan")


# --- weak labels: box, centroid and an interior point -------------------------------------------


def polygons_box(polygons) -> np.ndarray | None:
    """Tight box ``(x0, y0, x1, y1)`` of all vertices (same units as the input), or ``None``."""
    pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons if len(p)]
    if not pts:
        return None
    allp = np.concatenate(pts)
    return np.concatenate([allp.min(axis=0), allp.max(axis=0)])


def polygons_centroid(polygons) -> np.ndarray | None:
    """Area-weighted centroid ``(x, y)`` of the polygons' union (overlaps counted twice), same units;
    falls back to the vertex mean for zero-area input; ``None`` when there are no vertices."""
    sx = sy = total = 0.0
    for p in polygons:
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        if len(p) < 3:
            continue
        x, y = p[:, 0], p[:, 1]
        xn, yn = np.roll(x, -1), np.roll(y, -1)
        cross = x * yn - xn * y
        a = cross.sum() / 2.0  # signed: positive clockwise on screen
        total += a
        sx += ((x + xn) * cross).sum() / 6.0  # C_x = 1/(6A) Σ (x_i + x_{i+1}) cross_i
        sy += ((y + yn) * cross).sum() / 6.0
    if abs(total) > 1e-12:
        return np.array([sx / total, sy / total])
    pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons if len(p)]
    return np.concatenate(pts).mean(axis=0) if pts else None


def mask_box(mask) -> np.ndarray | None:
    """Tight box of a mask in pixel-edge coordinates ``(x0, y0, x1, y1)`` (x1 = last column + 1)."""
    x, y, w, h = cv2.boundingRect(as_binary_mask(mask))
    return None if w == 0 else np.array([x, y, x + w, y + h], dtype=np.float64)


def interior_point(mask) -> np.ndarray | None:
    """The pixel centre deepest inside the mask (largest distance to the background), pixel-edge (x, y).

    Unlike the centroid it always lies on the object, also for rings and C-shapes — the point prompt
    for point→polygon and the label for text→point.
    """
    m = as_binary_mask(mask)
    if not m.any():
        return None
    dist = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return np.array([c + 0.5, r + 0.5])


# --- shape metrics: how well the outline itself matches (the paper's missing metrics) ------------


def mask_boundary(mask) -> np.ndarray:
    """Boundary pixels of a mask (H, W) as bool: object pixels with a 4-neighbour outside the object.
    Outside the image counts as background, so an object touching the border has a boundary there."""
    m = np.pad(as_binary_mask(mask) != 0, 1)  # the padding is the background outside the image
    inner = cv2.erode(m.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))) != 0
    return (m & ~inner)[1:-1, 1:-1]


def _distance_to(boundary: np.ndarray) -> np.ndarray:
    """Euclidean distance (px, pixel centre to pixel centre) from every pixel to the nearest boundary pixel."""
    return cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def boundary_f_score(pred_mask, gt_mask, tolerance_px: float = 2) -> float:
    """Boundary F-measure (DAVIS): do the two outlines coincide within ``tolerance_px`` pixels?

    Masks are (H, W), nonzero = object, same shape. Boundaries are ``mask_boundary`` pixels;
    precision P = the fraction of predicted boundary pixels whose centre lies within ``tolerance_px``
    of a ground-truth boundary pixel's centre, recall R the same the other way; F = 2PR / (P + R).
    Both masks empty → 1.0; exactly one empty → 0.0. DAVIS sets the tolerance to 0.8 % of the image
    diagonal; a fixed number of pixels is easier to read at 112 px.
    """
    pred_b, gt_b = mask_boundary(pred_mask), mask_boundary(gt_mask)
    if pred_b.shape != gt_b.shape:
        raise ValueError(f"mask shapes differ: {pred_b.shape} vs {gt_b.shape}")
    if not pred_b.any() or not gt_b.any():
        return float(not pred_b.any() and not gt_b.any())
    precision = float(np.mean(_distance_to(gt_b)[pred_b] <= tolerance_px))
    recall = float(np.mean(_distance_to(pred_b)[gt_b] <= tolerance_px))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _valid_outlines(polygons) -> list[np.ndarray]:
    """Polygons with ≥ 3 finite vertices, as (k, 2) float arrays (what the rasterizer would draw)."""
    out = []
    for p in polygons:
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        if len(p) >= 3 and np.all(np.isfinite(p)):
            out.append(p)
    return out


def _points_to_outlines(points: np.ndarray, polygons: list[np.ndarray]) -> np.ndarray:
    """Distance from each point (n, 2) to the nearest point on any closed polygon outline (its edges)."""
    a = np.concatenate(polygons)  # edge j runs from a[j] to b[j]; each polygon closes on itself
    b = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    ab = b - a
    length2 = (ab**2).sum(axis=1)
    ap = points[:, None, :] - a[None]  # (n, m, 2)
    # t = clip((p - a)·(b - a) / |b - a|², 0, 1): the closest point on edge j is a + t (b - a)
    t = np.clip((ap * ab).sum(axis=2) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    return np.linalg.norm(ap - t[..., None] * ab, axis=2).min(axis=1)


def vertex_distance(pred_polygons, gt_polygons) -> float:
    """Symmetric vertex-to-outline (Chamfer) distance between two sets of polygons, in input units.

    Polygons are lists of ``(k, 2)`` (x, y) arrays — normalized (x / W, y / H) as ``parse_polygons``
    returns them, so the result is in normalized units too (on a non-square image a unit of x is not
    a unit of y; multiply both sets by ``(W, H)`` first for pixels). Each outline is closed.

        d = ½ (mean over predicted vertices of the distance to the nearest point on a gt edge
             + mean over gt vertices of the distance to the nearest point on a predicted edge)

    Edges, not just vertices: a vertex lying on the other outline scores 0 wherever the other's
    vertices happen to sit. Polygons with < 3 finite vertices are ignored; if either side has none
    left the distance is undefined and ``nan`` is returned (callers decide how to count a miss).
    """
    pred, gt = _valid_outlines(pred_polygons), _valid_outlines(gt_polygons)
    if not pred or not gt:
        return float("nan")
    to_gt = _points_to_outlines(np.concatenate(pred), gt)
    to_pred = _points_to_outlines(np.concatenate(gt), pred)
    return float((to_gt.mean() + to_pred.mean()) / 2)


def paired_difference(a, b, resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of ``b − a`` over the same samples with a percentile-bootstrap 95% interval (``resamples``
    resamplings of the samples), and how many got better / worse / stayed equal: how two models are
    compared on identical samples (``simpleseg-lite compare``, the arms table, the model cards)."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(d.mean()), "ci95": (float(lo), float(hi)), "better": int((d > 0).sum()),
            "worse": int((d < 0).sum()), "equal": int((d == 0).sum()), "n": int(len(d))}


def paired_row(d: dict) -> dict:
    """``paired_difference``'s result as one flat table row (the interval split into two columns), the form a
    notebook saves into its metrics so ``summary.md`` can print it."""
    return {"mean": d["mean"], "ci95 low": d["ci95"][0], "ci95 high": d["ci95"][1], "better": d["better"],
            "worse": d["worse"], "n": d["n"]}
