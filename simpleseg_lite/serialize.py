"""Polygons → answer text, in the format of the released SimpleSeg model.

The answer for one object is the Python ``str()`` of a list of polygons, each a list of ``[x, y]``
pairs normalized by the image width and height and rounded to ``decimals`` places (docs/conventions.md)::

    [[[0.295, 0.204], [0.31, 0.25], [0.28, 0.26]]]

Normalized coordinates: ``x_n = x_px / W``, ``y_n = y_px / H`` with pixel-edge ``x_px, y_px`` (see
``contours``), so ``0`` is the left/top image border and ``1`` the right/bottom one. Numbers are
printed like Python's ``str(round(v, d))`` (``0.3`` not ``0.300``), which is what ``str(list)`` of the
released answers gives; fewer characters, same values.

Weak labels share the same grammar: a point is ``[x, y]``, a box is ``[x0, y0, x1, y1]`` (top-left,
bottom-right, normalized).

Taught in ``notebooks/01_contour_serialization.py``.
"""

from __future__ import annotations

import functools

import regex

import numpy as np

from .contours import as_binary_mask, mask_to_polygons


@functools.lru_cache(maxsize=8)
def _table(decimals: int) -> np.ndarray:
    """Strings for every value k / 10**d in [0, 1]: ``repr(round(v, d))``, so ``0.3`` not ``0.300``.

    Formatting by table lookup is ~10× faster than calling ``round``/``repr`` per number, which
    matters when the data generator serializes hundreds of thousands of masks.
    """
    scale = 10**decimals
    return np.array([repr(round(k / scale, decimals) + 0.0) for k in range(scale + 1)], dtype=object)


def _fmt(v: float, decimals: int) -> str:
    return repr(round(float(v), decimals) + 0.0)  # -0.0 → 0.0


def normalize(polygons_px, width: int, height: int, decimals: int = 3) -> list[np.ndarray]:
    """Pixel-edge polygons → normalized, clipped to [0, 1] and rounded; consecutive duplicates that
    rounding creates are removed and polygons left with < 3 vertices are dropped."""
    out = []
    scale = np.array([width, height], dtype=np.float64)
    for p in polygons_px:
        q = np.round(np.clip(np.asarray(p, dtype=np.float64) / scale, 0.0, 1.0), decimals)
        keep = np.ones(len(q), dtype=bool)
        keep[1:] = (q[1:] != q[:-1]).any(axis=1)
        keep[0] = len(q) == 1 or (q[0] != q[-1]).any()
        q = q[keep]
        if len(q) >= 3:
            out.append(q)
    return out


def polygons_to_text(polygons_norm, decimals: int = 3) -> str:
    """Normalized polygons (list of ``(N, 2)`` (x, y) arrays in [0, 1]) → answer text."""
    table, scale = _table(decimals), 10**decimals
    parts = []
    for p in polygons_norm:
        k = np.rint(np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0) * scale).astype(np.intp)
        xs, ys = table[k[:, 0]], table[k[:, 1]]
        parts.append("[[" + "], [".join(map(", ".join, zip(xs, ys))) + "]]")
    return "[" + ", ".join(parts) + "]"


def mask_to_answer(mask, epsilon: float = 0.005, epsilon_mode: str = "perimeter", decimals: int = 3) -> str:
    """Binary mask (H, W) → SimpleSeg answer text (clockwise, canonical start, holes dropped).

    An empty mask gives ``"[]"`` (no polygon) — the caller decides whether that is an error.
    """
    mask = as_binary_mask(mask)
    polys = mask_to_polygons(mask, epsilon=epsilon, epsilon_mode=epsilon_mode)
    return polygons_to_text(normalize(polys, mask.shape[1], mask.shape[0], decimals), decimals)


def point_to_text(x: float, y: float, decimals: int = 3) -> str:
    """Normalized point → ``[x, y]``."""
    return f"[{_fmt(x, decimals)}, {_fmt(y, decimals)}]"


def box_to_text(box, decimals: int = 3) -> str:
    """Normalized box ``(x0, y0, x1, y1)`` → ``[x0, y0, x1, y1]``."""
    return "[" + ", ".join(_fmt(v, decimals) for v in box) + "]"


# Qwen2's pre-tokenizer splits text into pieces like this (digits one by one, punctuation runs with an
# optional leading space); BPE then keeps short punctuation runs such as "]," or " [" as one token.
_QWEN_PIECES = regex.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def estimate_tokens(text: str) -> int:
    """Estimate of the Qwen2.5 token count of an answer: the number of pre-tokenizer pieces.

    Exact for digits (Qwen splits every digit); punctuation runs of the answer format ("[[[", "], [")
    are counted as one token each, which is how the Qwen2.5 vocabulary encodes the common ones. Use it
    to compare with the paper's token counts (78 / 221 / 859) without downloading the tokenizer.
    """
    return len(_QWEN_PIECES.findall(text))
