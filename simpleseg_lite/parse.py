"""Answer text → polygons: the one parser used by rewards, evaluation and the CLI.

A model's answer is untrusted text. ``parse_polygons`` never raises and runs in linear time: a single
regular-expression scan finds every ``[x, y]`` pair and every ``]`` that closes a polygon, in the
spirit of the released decoder's regex (model card), but tolerant of what small models write:

==============================  =====================================================================
input                           result
==============================  =====================================================================
``[[[x, y], ...], [...]]``      the released format: one polygon per inner list
``[[x, y], ...]``               a bare single polygon
``Sure, it is at [[[...]]].``   prose around the list is ignored
``[[[x, y], [x, y], [x, y``     truncated: the complete pairs are kept, ``truncated=True``
values slightly outside [0,1]   clipped to the image (within ``CLIP_MARGIN``)
NaN / inf / |v| ≫ 1             invalid, with the reason (pixel coordinates are the common cause)
< 3 vertices                    that polygon is dropped; if none is left, invalid
no pairs, ``[]``, empty text    invalid, with the reason
==============================  =====================================================================

``valid`` means "usable polygons came out" (they can be rasterized and scored); ``well_formed`` means
the answer also follows the grammar exactly (closed brackets, nothing dropped or clipped) — the format
reward uses it. Coordinates are normalized (x, y), y down, as in ``serialize``.

Taught in ``notebooks/01_contour_serialization.py``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

# How far outside [0, 1] a coordinate may stray and still be clipped to the image border.
CLIP_MARGIN = 0.1
# A cap on what one answer may hold; longer answers are cut here (and marked truncated).
MAX_CHARS = 100_000
MAX_VERTICES = 4_096

_NUM = r"[-+]?(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:[eE][-+]?\d{1,6})?|[-+]?(?:nan|inf(?:inity)?)"
# one [x, y] pair, optionally followed by the "]" that closes its polygon
_PAIR = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*\](\s*\])?", re.IGNORECASE)
_FLAT4 = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]", re.IGNORECASE)


@dataclass
class ParseResult:
    """What came out of one answer. ``polygons``: list of ``(N, 2)`` float64 arrays, normalized (x, y)."""

    polygons: list = field(default_factory=list)
    valid: bool = False
    error: str | None = None
    well_formed: bool = False
    truncated: bool = False
    clipped: bool = False
    dropped: int = 0  # polygons dropped for having < 3 vertices

    def to_json(self) -> dict:
        return {
            "polygons": [p.tolist() for p in self.polygons],
            "valid": self.valid,
            "error": self.error,
        }


def _invalid(reason: str, **kw) -> ParseResult:
    return ParseResult(valid=False, error=reason, **kw)


def _check_values(values: np.ndarray) -> tuple[str | None, bool]:
    """(error or None, needs clipping?) for a flat array of normalized coordinates."""
    # NaN propagates through min/max; the ufuncs and math.isfinite skip ~3 µs of wrappers (hot path)
    lo, hi = float(np.minimum.reduce(values)), float(np.maximum.reduce(values))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "non-finite coordinate (nan or inf)", False
    worst = max(-lo, hi - 1.0)
    if worst > CLIP_MARGIN:
        hint = " — these look like pixel coordinates; answers must be normalized to [0, 1]" if worst > 1 else ""
        return f"coordinate {lo if -lo >= hi - 1.0 else hi:.4g} outside [0, 1]{hint}", False
    return None, worst > 0


_NUMBER_CHARS = "0123456789.-+eE \t\r\n"
_SKELETON_DROP = str.maketrans("", "", _NUMBER_CHARS)
_BRACKETS_TO_SPACE = str.maketrans("[]", "  ")
_TRIPLE = re.compile(r"\[\[\[,\](?:,\[,\])*\](?:,\[\[,\](?:,\[,\])*\])*\]")
_DOUBLE = re.compile(r"\[\[,\](?:,\[,\])*\]")


def _fast_polygons(text: str):
    """Fast path for clean answers (the common case during training and evaluation).

    The bracketed span is checked by its *skeleton* — the span with every number character removed
    must read ``[[[,],[,]...],...]`` (or ``[[,],...]`` for a bare polygon) — then all numbers are read
    by one C call. Returns ``(arrays, triple_nested)`` or ``None`` to hand over to the regex path.
    """
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return None
    span = text[start : end + 1]
    skeleton = span.translate(_SKELETON_DROP)
    if _TRIPLE.fullmatch(skeleton):
        parts, triple = skeleton[1:-1].split("]],[["), True
    elif _DOUBLE.fullmatch(skeleton):
        parts, triple = [skeleton], False
    else:
        return None
    sizes = [(part.count(",") + 1) // 2 for part in parts]
    try:
        # A malformed number such as "1.2.3" stops numpy early with a DeprecationWarning (ignored by
        # Python's default filters; raised under -W error, hence caught); the size check below then
        # hands the text to the regex path. No catch_warnings block: it costs ~2 µs per call here.
        values = np.fromstring(span.translate(_BRACKETS_TO_SPACE), dtype=np.float64, sep=",")
    except (ValueError, DeprecationWarning):
        return None
    if values.size != 2 * sum(sizes):
        return None
    return values, sizes, triple


def _regex_polygons(text: str):
    """Tolerant path: every ``[x, y]`` pair in order, a polygon closed by ``]]``.

    Returns ``(flat values, vertices per polygon, truncated)``."""
    numbers, sizes, n = [], [], 0
    for x, y, close in _PAIR.findall(text):
        numbers += (x, y)
        n += 1
        if close:
            sizes.append(n)
            n = 0
    truncated = n > 0  # the last polygon was never closed: truncated output
    if n:
        sizes.append(n)
    if len(numbers) > 2 * MAX_VERTICES:
        raise ValueError(f"more than the {MAX_VERTICES} vertices allowed")
    # float() reads nan/inf too; _NUM's digit caps keep every number within float range or inf
    return np.array(numbers, dtype=np.float64), sizes, truncated


def parse_polygons(text) -> ParseResult:
    """Parse a SimpleSeg answer into normalized polygons. Never raises; see the module table."""
    if not isinstance(text, str):
        return _invalid(f"expected text, got {type(text).__name__}")
    truncated = len(text) > MAX_CHARS
    text = text[:MAX_CHARS]
    if not text or text.isspace():
        return _invalid("empty answer")

    fast = None if truncated else _fast_polygons(text)
    if fast is not None:
        values, sizes, nested = fast
    else:
        nested = False
        try:
            values, sizes, cut = _regex_polygons(text)
        except ValueError as e:
            return _invalid(str(e), truncated=truncated)
        truncated = truncated or cut
    if not sizes:
        return _invalid("no [x, y] pairs found", truncated=truncated)

    error, clipped = _check_values(values)
    if error:
        return _invalid(error, truncated=truncated)
    if clipped:
        values = np.clip(values, 0.0, 1.0)
    points = values.reshape(-1, 2)
    if len(sizes) == 1:
        arrays = [points]
    else:
        arrays = np.split(points, np.cumsum(sizes)[:-1])
    kept = [a for a in arrays if len(a) >= 3]
    dropped = len(arrays) - len(kept)
    if not kept:
        return _invalid("no polygon has 3 or more vertices", truncated=truncated, dropped=dropped)
    well_formed = nested and not (truncated or clipped or dropped)
    return ParseResult(kept, True, None, well_formed, truncated, clipped, dropped)


def _numbers(match, count: int) -> np.ndarray | None:
    try:
        v = np.array([float(match.group(i + 1)) for i in range(count)])
    except (ValueError, OverflowError):
        return None
    return None if _check_values(v)[0] else np.clip(v, 0.0, 1.0)


def parse_point(text) -> np.ndarray | None:
    """First ``[x, y]`` in the text as a normalized (2,) array, or ``None``. Never raises."""
    if not isinstance(text, str):
        return None
    m = _PAIR.search(text[:MAX_CHARS])
    return _numbers(m, 2) if m else None


def parse_box(text) -> np.ndarray | None:
    """First ``[x0, y0, x1, y1]`` in the text as a normalized (4,) array with x0≤x1, y0≤y1, or ``None``."""
    if not isinstance(text, str):
        return None
    m = _FLAT4.search(text[:MAX_CHARS])
    v = _numbers(m, 4) if m else None
    if v is None:
        return None
    return np.array([min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3])])

